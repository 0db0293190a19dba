#!/usr/bin/env bash
# scripts/make_motion_dataset.py on a tiny dataset (2 videos per class and split, 16 frames, 64x64):
#   1. the same seed twice gives the same frames (decoded with ffmpeg to raw RGB, SHA-256 over all
#      videos, and the raw-frame hashes the script records before encoding); another seed differs;
#   2. --check accepts the dataset, and rejects it once a manifest line is duplicated;
#   3. a class and its time reverse look alike frame by frame while their motion differs: video i
#      of a class and video i of its reverse (same seed, same footage) differ per frame by less than
#      5 grey levels in mean brightness and in contrast, and the object, found in the first and
#      the last frame by matching a disc cut from it at the middle frame (position from
#      samples.jsonl; translation searched over the whole frame, plus scale for the zoom pair and
#      angle for the rotation pair), moves left for move_left and right for move_right, up/down
#      for move_up/move_down, grows for zoom_in and shrinks for zoom_out, turns clockwise for
#      rotate_cw and counter-clockwise for rotate_ccw.
# Exits 77 (skipped) when the Debian test videos or python3-numpy/python3-opencv are missing.
# Needs: ffmpeg, python3-numpy, python3-opencv (Debian packages).
#   VJEPA_SOURCE_DIR   the repository (default: this script's repository)
#   VJEPA_TEST_VIDEOS  the source clips (default: ~/.cache/vjepa-train/videos)
#   PYTHON             the interpreter with numpy and cv2 (default: /usr/bin/python3)
set -euo pipefail
src="${VJEPA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
videos="${VJEPA_TEST_VIDEOS:-${HOME:-/root}/.cache/vjepa-train/videos}"
py="${PYTHON:-/usr/bin/python3}"
make="$src/scripts/make_motion_dataset.py"
dir="$(mktemp -d "${TMPDIR:-/tmp}/vjepa-motion-dataset-test.XXXXXX")"
trap 'rm -rf "$dir"' EXIT

fail() { echo "motion_dataset_test: FAIL: $*" >&2; exit 1; }
skip() { echo "motion_dataset_test: SKIP: $*" >&2; exit 77; }

command -v ffmpeg > /dev/null || fail "ffmpeg is needed (Debian package ffmpeg)"
"$py" -c 'import numpy, cv2' 2> /dev/null ||
  skip "$py lacks numpy/cv2 (Debian packages python3-numpy python3-opencv)"
ls "$videos"/*.mp4 > /dev/null 2>&1 || skip "no test videos in $videos (scripts/fetch_test_videos.sh)"

tiny=(--videos "$videos" --pretrain 2 --probe-train 2 --probe-test 2 --frames 16 --size 64x64 --jobs 2)
gen() { timeout 300 "$py" "$make" --out "$1" --seed "$2" "${tiny[@]}" 2> "$1.log" ||
          { cat "$1.log" >&2; fail "make_motion_dataset.py --seed $2 failed"; }; }
gen "$dir/a" 7
gen "$dir/b" 7
gen "$dir/c" 8

# Hash of the decoded frames of every video of a dataset, in manifest order.
frames_hash() {
  local d="$1" path label
  cat "$d/pretrain.csv" "$d/probe_train.csv" "$d/probe_test.csv" | while read -r path label; do
    ffmpeg -v error -nostdin -i "$d/$path" -f rawvideo -pix_fmt rgb24 - || fail "decode $path"
  done | sha256sum | cut -d' ' -f1
}
ha="$(frames_hash "$dir/a")"; hb="$(frames_hash "$dir/b")"; hc="$(frames_hash "$dir/c")"
[[ "$ha" == "$hb" ]] || fail "same seed, different decoded frames ($ha vs $hb)"
[[ "$ha" != "$hc" ]] || fail "seeds 7 and 8 give the same decoded frames"
raw() { "$py" -c 'import json,sys; print(" ".join(json.loads(l)["frames_sha256"] for l in open(sys.argv[1])))' "$1/samples.jsonl"; }
[[ "$(raw "$dir/a")" == "$(raw "$dir/b")" ]] || fail "same seed, different raw frames before encoding"
echo "motion_dataset_test: same seed -> same frames ($ha), other seed differs" >&2

"$py" "$make" --check "$dir/a" --jobs 2 || fail "--check rejects a fresh dataset"
# A clip listed in two splits must be caught.
head -n1 "$dir/b/pretrain.csv" >> "$dir/b/probe_test.csv"
if "$py" "$make" --check "$dir/b" --jobs 2 2> "$dir/bad.log"; then
  fail "--check accepts a dataset whose probe_test.csv repeats a pretrain clip"
fi
grep -q "listed in" "$dir/bad.log" || { cat "$dir/bad.log" >&2; fail "--check: wrong complaint"; }

"$py" - "$dir/a" <<'EOF' || fail "class statistics"
import json, subprocess, sys
import numpy as np, cv2

d = sys.argv[1]
classes = open(f"{d}/classes.txt").read().split()
recs = {}
for line in open(f"{d}/samples.jsonl"):
    r = json.loads(line)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", f"{d}/{r['path']}", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    r["frames"] = np.frombuffer(raw, np.uint8).reshape(-1, 64, 64).astype(np.float32)
    recs[(r["split"], r["class"], r["index"])] = r


def locate(frame, tmpl, mask, scales, angles):
    """Best (x, y, scale, angle) of the template in the frame (angle > 0: clockwise on screen)."""
    best = None
    n = tmpl.shape[0]
    c = (n - 1) / 2.0
    for s in scales:
        for a in angles:
            th = np.radians(a)
            m = np.array([[s * np.cos(th), -s * np.sin(th), 0], [s * np.sin(th), s * np.cos(th), 0]])
            m[:, 2] = [c - m[0, 0] * c - m[0, 1] * c, c - m[1, 0] * c - m[1, 1] * c]
            t = cv2.warpAffine(tmpl, m, (n, n), flags=cv2.INTER_LINEAR)
            k = cv2.warpAffine(mask, m, (n, n), flags=cv2.INTER_NEAREST)
            r = cv2.matchTemplate(frame, t, cv2.TM_SQDIFF, mask=k) / max(k.sum(), 1.0)
            v, _, loc, _ = cv2.minMaxLoc(r)
            if best is None or v < best[0]:
                best = (v, loc[0] + c, loc[1] + c, s, a)
    return best[1:]


def motion(r):
    """Object (dx, dy, scale ratio, angle change) from the first to the last frame, found by
    matching a disc from the middle of the object at the middle frame."""
    f = r["frames"]
    T = len(f)
    t = T // 2
    mid = (T - 1) / 2.0
    x = r["centre"][0] + (r["velocity"][0] - r["pan"][0]) * (t - mid)
    y = r["centre"][1] + (r["velocity"][1] - r["pan"][1]) * (t - mid)
    rad = max(3, int(0.3 * r["obj_size"] * np.exp(r["zoom_rate"] * (t - mid))))
    n = 2 * int(rad * 1.5) + 1
    h = n // 2
    xi, yi = int(round(x)), int(round(y))
    pad = cv2.copyMakeBorder(f[t], h, h, h, h, cv2.BORDER_REFLECT)
    tmpl = pad[yi:yi + n, xi:xi + n].copy()
    mask = np.zeros((n, n), np.float32)
    cv2.circle(mask, (h, h), rad, 1.0, -1)
    kind = r["kind"]
    scales = np.exp(np.linspace(-0.3, 0.3, 25)) if kind == "zoom" else [1.0]
    angles = np.arange(-70, 71, 5) if kind == "rotate" else [0.0]
    a = locate(f[0], tmpl, mask, scales, angles)
    b = locate(f[-1], tmpl, mask, scales, angles)
    return np.array([b[0] - a[0], b[1] - a[1], np.log(b[2] / a[2]), b[3] - a[3]])


ok = True
for ci in range(0, len(classes), 2):
    a, b = classes[ci], classes[ci + 1]
    keys = [k for k in recs if k[1] == a]
    # Frame by frame: brightness and contrast of video i of a class and of its reverse.
    db = np.mean([abs(recs[k]["frames"].mean((1, 2)) - recs[(k[0], b, k[2])]["frames"].mean((1, 2))).mean() for k in keys])
    dc = np.mean([abs(recs[k]["frames"].std((1, 2)) - recs[(k[0], b, k[2])]["frames"].std((1, 2))).mean() for k in keys])
    ma = np.mean([motion(recs[k]) for k in keys], axis=0)
    mb = np.mean([motion(recs[(k[0], b, k[2])]) for k in keys], axis=0)
    print(f"  {a}/{b}: per-frame |d brightness| {db:.2f} |d contrast| {dc:.2f}; "
          f"motion dx,dy,dlogscale,dangle {np.round(ma, 2)} / {np.round(mb, 2)}", file=sys.stderr)
    ok &= bool(db < 5 and dc < 5)
    comp = {"move_left": 0, "move_up": 1, "zoom_in": 2, "rotate_cw": 3}[a]
    ok &= bool(ma[comp] > 0 > mb[comp]) if a.startswith(("zoom", "rotate")) else bool(ma[comp] < 0 < mb[comp])
sys.exit(0 if ok else 1)
EOF
echo "motion_dataset_test: PASS" >&2
