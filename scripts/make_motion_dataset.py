#!/usr/bin/python3
"""Makes a small labelled video dataset whose classes differ only in motion.

A textured patch cut from one real clip moves over a crop of another real clip (the
Debian test videos of tests/data/debian-videos.tsv, fetched by scripts/fetch_test_videos.sh).
Eight classes form four time-reversal pairs:

    move_left / move_right, move_up / move_down, zoom_in / zoom_out, rotate_cw / rotate_ccw

Every class uses the same sampler for background clip, start frame, crop, camera pan, object
texture, mask, size, position and speed; a class and its reverse differ only in the sign of the
motion, so single frames look alike and only the motion over time tells the classes apart.
Positions, scales and angles are sampled at the middle frame of the clip and the motion is
applied symmetrically around it (t - mid), so the two classes of a pair have the same
distribution at the middle frame and mirror-image distributions elsewhere.

Each sample has its own random generator seeded from (seed, split, pair, index): video i of a
class and video i of its reverse are drawn from the same seed (same background footage, texture,
size, middle-frame position and speed) and differ only in the sign of the motion, so nothing but
the motion separates the two classes even in a small probe set. Different pairs, indices and
splits use different seeds. The output frames depend only on --seed and the source clips, not
on --jobs. The source clips are grouped
by Debian package (same clip in several containers stays in one group) and the groups are divided
between pretrain and the probe splits, so pretrain and probe videos share no source clip.

Output (DIR = --out):
    DIR/videos/<split>/<class>/<i>.mp4      H.264 yuv420p, 25 fps
    DIR/pretrain.csv, DIR/probe_train.csv, DIR/probe_test.csv
                                            "path label" per line, path relative to DIR
    DIR/classes.txt                         class names, line number = label
    DIR/samples.jsonl                       one record per video: sources, parameters and the
                                            SHA-256 of its raw RGB frames before encoding
    DIR/dataset.json, DIR/README            settings, counts, source clips per split

Needs python3-numpy, python3-opencv and ffmpeg (Debian packages). `--check DIR` verifies an
existing dataset (manifests, counts, every file decodes per ffprobe, no shared clip).
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool

import numpy as np
import cv2

CLASSES = ["move_left", "move_right", "move_up", "move_down",
           "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw"]
SPLITS = ["pretrain", "probe_train", "probe_test"]
SPLIT_POOL = {"pretrain": "pretrain", "probe_train": "probe", "probe_test": "probe"}
FPS = 25
MAX_SOURCE_FRAMES = 250  # frames decoded per source clip
MAX_OBJECT_TRIES = 30    # object boxes drawn before the most textured one is kept
MIN_OBJECT_STD = 20.0    # grey-level std of an acceptable object box (at 32x32)
MIN_OBJECT_GRAD = 40.0   # mean |Sobel x| + |Sobel y| of an acceptable object box (at 32x32)
MIN_OBJECT_CONTRAST = 40.0  # RGB distance of the box's mean colour from the background crop's
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".ogv", ".3gp", ".flv", ".asf", ".m4v")


def log(msg):
    print(f"make_motion_dataset: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- source clips

def probe_dims(path):
    """(width, height) of the first video stream, or None when there is none."""
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0",
             "-show_entries", "stream=width,height", "-of", "csv=p=0", path],
            capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    parts = out.stdout.strip().split("\n")[0].split(",")
    try:
        w, h = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def decode_source(args):
    """Decodes a clip to <cache>/<name>.rgb scaled so its short side is `short`.

    Returns a descriptor dict or None when the clip cannot be decoded."""
    path, cache, short = args
    name = os.path.basename(path)
    dims = probe_dims(path)
    if dims is None:
        return None
    w, h = dims
    scale = short / min(w, h)
    ow = max(2, int(round(w * scale / 2)) * 2)
    oh = max(2, int(round(h * scale / 2)) * 2)
    out = os.path.join(cache, name + ".rgb")
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-i", path, "-an",
           "-vf", f"scale={ow}:{oh}:flags=area,format=rgb24", "-frames:v", str(MAX_SOURCE_FRAMES),
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", out]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0 or not os.path.exists(out):
        if os.path.exists(out):
            os.remove(out)
        return None
    n = os.path.getsize(out) // (ow * oh * 3)
    if n < 1:
        os.remove(out)
        return None
    return {"name": name, "group": name.split("--")[0] if "--" in name else name,
            "file": out, "width": ow, "height": oh, "frames": int(n)}


def list_videos(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(VIDEO_EXTS) and os.path.isfile(os.path.join(folder, f)))


def assign_pools(sources, frames, seed):
    """Divides the source groups between 'pretrain' and 'probe'. Returns (pools, shared)."""
    groups = sorted({s["group"] for s in sources})
    bg_groups = [g for g in groups if any(s["group"] == g and s["frames"] >= frames for s in sources)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9901]))
    if len(bg_groups) < 2:
        log("fewer than 2 usable source groups: pretrain and probe share source clips "
            "(samples still use disjoint seeds)")
        return {"pretrain": sources, "probe": sources}, True
    order = [bg_groups[i] for i in rng.permutation(len(bg_groups))]
    # Alternate background-capable groups; texture-only groups follow the same alternation.
    pool_of = {g: ("pretrain" if i % 2 == 0 else "probe") for i, g in enumerate(order)}
    rest = [g for g in groups if g not in pool_of]
    rest = [rest[i] for i in rng.permutation(len(rest))]
    for i, g in enumerate(rest):
        pool_of[g] = "probe" if i % 2 == 0 else "pretrain"
    pools = {p: [s for s in sources if pool_of[s["group"]] == p] for p in ("pretrain", "probe")}
    return pools, False


# ----------------------------------------------------------------------------- rendering

_SOURCES = {}  # file -> memmap, per worker process


def frames_of(src):
    arr = _SOURCES.get(src["file"])
    if arr is None:
        arr = np.memmap(src["file"], dtype=np.uint8, mode="r",
                        shape=(src["frames"], src["height"], src["width"], 3))
        _SOURCES[src["file"]] = arr
    return arr


def pick(rng, pool, min_frames=1, avoid_group=None):
    """A clip chosen uniformly by group, then uniformly within the group (a group other than
    avoid_group when the pool has one)."""
    cands = [s for s in pool if s["frames"] >= min_frames]
    if any(s["group"] != avoid_group for s in cands):
        cands = [s for s in cands if s["group"] != avoid_group]
    groups = sorted({s["group"] for s in cands})
    g = groups[rng.integers(len(groups))]
    members = [s for s in cands if s["group"] == g]
    return members[rng.integers(len(members))]


def soft_mask(h, w, kind, feather):
    """Float mask in [0,1] of a soft ellipse or rounded rectangle filling an h x w patch."""
    m = np.zeros((h, w), np.float32)
    pad = max(1, int(round(feather)))
    if kind == "ellipse":
        cv2.ellipse(m, (w // 2, h // 2), (max(1, w // 2 - pad), max(1, h // 2 - pad)),
                    0, 0, 360, 1.0, -1, lineType=cv2.LINE_AA)
    else:
        r = int(round(0.25 * min(h, w)))
        x0, y0, x1, y1 = pad, pad, w - 1 - pad, h - 1 - pad
        r = max(1, min(r, (x1 - x0) // 2, (y1 - y0) // 2))
        cv2.rectangle(m, (x0 + r, y0), (x1 - r, y1), 1.0, -1)
        cv2.rectangle(m, (x0, y0 + r), (x1, y1 - r), 1.0, -1)
        for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
            cv2.circle(m, (cx, cy), r, 1.0, -1, lineType=cv2.LINE_AA)
    k = 2 * int(round(feather)) + 1
    return cv2.GaussianBlur(m, (k, k), feather / 2.0)


def texture(box):
    """(grey-level std, mean gradient magnitude) of a box seen at 32x32."""
    g = cv2.cvtColor(cv2.resize(np.ascontiguousarray(box), (32, 32), interpolation=cv2.INTER_AREA),
                     cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
    return float(g.std()), float(grad.mean())


def sample_params(rng, cls, pool, W, H, T):
    """Draws every random choice of one video. The class sets only the motion sign and kind."""
    base = min(W, H)
    mid = (T - 1) / 2.0
    p = {}
    # Background: random clip, start frame, crop, slow camera pan (output px per frame).
    bg = pick(rng, pool, T)
    p["bg_clip"], p["bg_group"] = bg["name"], bg["group"]
    p["bg_start"] = int(rng.integers(0, bg["frames"] - T + 1))
    pan_speed = rng.uniform(0.0, 0.35) * base / 112.0
    pan_dir = rng.uniform(0, 2 * math.pi)
    pan = np.array([math.cos(pan_dir), math.sin(pan_dir)]) * pan_speed  # output px / frame
    crop_h = rng.uniform(0.5, 0.85) * bg["height"]
    crop_h = min(crop_h, 0.85 * bg["width"] * H / W)
    crop_w = crop_h * W / H
    s = crop_h / H  # source px per output px
    ext = np.abs(pan) * s * mid  # source px travelled each side of the middle frame
    cx = rng.uniform(ext[0], bg["width"] - crop_w - ext[0]) if bg["width"] - crop_w > 2 * ext[0] else (bg["width"] - crop_w) / 2
    cy = rng.uniform(ext[1], bg["height"] - crop_h - ext[1]) if bg["height"] - crop_h > 2 * ext[1] else (bg["height"] - crop_h) / 2
    p["bg_crop"] = [float(cx), float(cy), float(crop_w), float(crop_h)]
    p["pan"] = [float(pan[0]), float(pan[1])]

    # Object: textured box from a frame of another clip, soft mask. Flat boxes (a wall, a black
    # border) or boxes coloured like the background would hide the motion, so boxes are redrawn
    # until one has enough texture and colour contrast (else the best of the tries is kept).
    b0 = int(round(cx)), int(round(cy))
    bg_mean = np.asarray(frames_of(bg)[p["bg_start"] + int(mid), b0[1]:b0[1] + int(crop_h),
                                        b0[0]:b0[0] + int(crop_w)], np.float32).reshape(-1, 3).mean(0)
    best = None
    for _ in range(MAX_OBJECT_TRIES):
        ob = pick(rng, pool, 1, avoid_group=bg["group"])
        fi = int(rng.integers(0, ob["frames"]))
        side = rng.uniform(0.25, 0.6) * min(ob["width"], ob["height"])
        aspect = math.exp(rng.uniform(math.log(0.7), math.log(1.4)))
        bw = int(round(min(ob["width"], side * math.sqrt(aspect))))
        bh = int(round(min(ob["height"], side / math.sqrt(aspect))))
        bx = int(rng.integers(0, ob["width"] - bw + 1))
        by = int(rng.integers(0, ob["height"] - bh + 1))
        box = frames_of(ob)[fi, by:by + bh, bx:bx + bw]
        std, grad = texture(box)
        inner = np.asarray(box[bh // 4:bh - bh // 4, bw // 4:bw - bw // 4], np.float32)
        contrast = float(np.linalg.norm(inner.reshape(-1, 3).mean(0) - bg_mean))
        score = min(std / MIN_OBJECT_STD, grad / MIN_OBJECT_GRAD, contrast / MIN_OBJECT_CONTRAST)
        if best is None or score > best[0]:
            best = (score, ob, fi, (bx, by, bw, bh))
        if score >= 1.0:
            break
    _, ob, fi, (bx, by, bw, bh) = best
    p["obj_clip"], p["obj_group"], p["obj_frame"] = ob["name"], ob["group"], fi
    p["obj_box"] = [bx, by, bw, bh]
    p["mask"] = "ellipse" if rng.random() < 0.5 else "rounded_rect"
    size = rng.uniform(0.28, 0.45) * base  # displayed longest side (output px) at the middle frame
    p["obj_size"] = float(size)

    # Motion. Rates are per frame; the same draws for every class, the class picks kind and sign.
    speed = rng.uniform(0.6, 1.4) * base / 112.0          # px / frame for translations
    zoom_rate = rng.uniform(0.010, 0.020)                 # log-scale / frame
    spin = rng.uniform(1.5, 3.5)                          # degrees / frame
    angle0 = rng.uniform(0.0, 360.0)                      # angle at the middle frame
    kind, sign = {
        "move_left": ("move", (-1, 0)), "move_right": ("move", (1, 0)),
        "move_up": ("move", (0, -1)), "move_down": ("move", (0, 1)),
        "zoom_in": ("zoom", 1), "zoom_out": ("zoom", -1),
        "rotate_cw": ("rotate", 1), "rotate_ccw": ("rotate", -1)}[cls]
    vel = np.zeros(2)
    zoom = 0.0
    omega = 0.0
    if kind == "move":
        vel = np.array(sign, float) * speed
    elif kind == "zoom":
        zoom = sign * zoom_rate
    else:
        omega = sign * spin  # positive = clockwise on screen (y points down)
    # Position at the middle frame: keep the object inside the frame over the whole clip,
    # with the same bounds for a class and its reverse.
    half = 0.5 * size * math.exp(abs(zoom) * mid)
    travel = (np.abs(vel) + np.abs(pan)) * mid
    lo = np.array([half, half]) * 0.8 + travel
    hi = np.array([W, H]) - lo
    centre = [rng.uniform(lo[i], hi[i]) if hi[i] > lo[i] else [W, H][i] / 2 for i in range(2)]
    p.update({"kind": kind, "velocity": [float(vel[0]), float(vel[1])], "zoom_rate": float(zoom),
              "spin_deg": float(omega), "angle_deg": float(angle0),
              "centre": [float(centre[0]), float(centre[1])]})
    return p


def render(p, pool_by_name, W, H, T):
    """Renders the T frames of one sample: uint8 array (T, H, W, 3)."""
    mid = (T - 1) / 2.0
    bg = pool_by_name[p["bg_clip"]]
    bgf = frames_of(bg)
    cx, cy, cw, ch = p["bg_crop"]
    s = ch / H
    pan = np.array(p["pan"])

    ob = pool_by_name[p["obj_clip"]]
    bx, by, bw, bh = p["obj_box"]
    patch = np.asarray(frames_of(ob)[p["obj_frame"], by:by + bh, bx:bx + bw], np.float32)
    # Pre-shrink the patch to its largest displayed size so the per-frame warp never minifies much.
    zmax = math.exp(abs(p["zoom_rate"]) * mid)
    disp = p["obj_size"] * zmax
    k = min(1.0, disp / max(bw, bh))
    pw, ph = max(4, int(round(bw * k))), max(4, int(round(bh * k)))
    if (pw, ph) != (bw, bh):
        patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_AREA)
    feather = max(1.0, 0.08 * min(pw, ph))
    alpha = soft_mask(ph, pw, p["mask"], feather)
    rgba = np.dstack([patch * alpha[..., None], alpha])  # premultiplied
    unit = p["obj_size"] / max(pw, ph)  # output px per patch px at the middle frame

    out = np.empty((T, H, W, 3), np.uint8)
    for t in range(T):
        dt = t - mid
        # Background: dst -> src affine, crop origin moves with the pan.
        ox, oy = cx + pan[0] * s * dt, cy + pan[1] * s * dt
        mb = np.array([[s, 0, ox], [0, s, oy]], np.float64)
        frame = cv2.warpAffine(np.asarray(bgf[p["bg_start"] + t]), mb, (W, H),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        # Object: patch -> dst affine. The object lives in the scene, so the pan moves it too.
        sc = unit * math.exp(p["zoom_rate"] * dt)
        th = math.radians(p["angle_deg"] + p["spin_deg"] * dt)
        c, sn = math.cos(th) * sc, math.sin(th) * sc
        px = p["centre"][0] + (p["velocity"][0] - pan[0]) * dt
        py = p["centre"][1] + (p["velocity"][1] - pan[1]) * dt
        pcx, pcy = (pw - 1) / 2.0, (ph - 1) / 2.0
        mo = np.array([[c, -sn, px - (c * pcx - sn * pcy)],
                       [sn, c, py - (sn * pcx + c * pcy)]], np.float64)
        ow = cv2.warpAffine(rgba, mo, (W, H), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = ow[..., 3:4]
        frame = frame * (1.0 - a) + ow[..., :3]
        out[t] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return out


def encode(frames, path, fps):
    T, H, W, _ = frames.shape
    tmp = path + ".tmp"
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{W}x{H}", "-r", str(fps), "-i", "-", "-an", "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-threads", "1",
           "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
           "-movflags", "+faststart", "-f", "mp4", tmp]
    r = subprocess.run(cmd, input=frames.tobytes(), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg failed for {path}: {r.stderr.decode(errors='replace')[-500:]}")
    os.replace(tmp, path)


_CTX = {}


def init_worker(ctx):
    cv2.setNumThreads(1)
    _CTX.update(ctx)


def make_one(task):
    split, ci, i = task
    ctx = _CTX
    W, H, T = ctx["W"], ctx["H"], ctx["T"]
    pool = ctx["pools"][SPLIT_POOL[split]]
    cls = CLASSES[ci]
    # A class and its reverse share the draws of sample i (same seed), only the sign differs.
    sd = [ctx["seed"], SPLITS.index(split), ci // 2, i]
    rng = np.random.default_rng(np.random.SeedSequence(sd))
    p = sample_params(rng, cls, pool, W, H, T)
    frames = render(p, {s["name"]: s for s in pool}, W, H, T)
    rel = f"videos/{split}/{cls}/{i}.mp4"
    encode(frames, os.path.join(ctx["out"], rel), FPS)
    return {"path": rel, "split": split, "class": cls, "label": ci, "index": i,
            "seed": sd,
            "frames_sha256": hashlib.sha256(frames.tobytes()).hexdigest(), **p}


# ----------------------------------------------------------------------------- generate

def generate(a):
    W, H = a.size
    T = a.frames
    counts = {"pretrain": a.pretrain, "probe_train": a.probe_train, "probe_test": a.probe_test}
    t0 = time.time()
    folder = os.path.expanduser(a.videos)
    vids = list_videos(folder) if os.path.isdir(folder) else []
    if not vids:
        sys.exit(f"make_motion_dataset: no videos in {a.videos} (run scripts/fetch_test_videos.sh)")
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "videos")):
        shutil.rmtree(os.path.join(out, "videos"))
    cache = os.path.join(out, ".sources")
    os.makedirs(cache, exist_ok=True)
    short = 2 * max(W, H)
    with Pool(a.jobs) as pl:
        dec = pl.map(decode_source, [(v, cache, short) for v in vids], chunksize=1)
    sources = []
    for v, d in zip(vids, dec):
        if d is None:
            log(f"skipping {os.path.basename(v)}: cannot be decoded")
        else:
            sources.append(d)
    if not any(s["frames"] >= T for s in sources):
        sys.exit(f"make_motion_dataset: no decodable source clip has {T} frames")
    log(f"decoded {len(sources)} of {len(vids)} source clips in {time.time() - t0:.1f}s")
    pools, shared = assign_pools(sources, T, a.seed)
    for p in ("pretrain", "probe"):
        log(f"{p} sources: " + ", ".join(s["name"] for s in pools[p]))

    tasks = []
    for split in SPLITS:
        for ci, cls in enumerate(CLASSES):
            os.makedirs(os.path.join(out, "videos", split, cls), exist_ok=True)
            tasks += [(split, ci, i) for i in range(counts[split])]
    ctx = {"W": W, "H": H, "T": T, "seed": a.seed, "out": out, "pools": pools}
    records = []
    t1 = time.time()
    with Pool(a.jobs, initializer=init_worker, initargs=(ctx,)) as pl:
        for n, rec in enumerate(pl.imap(make_one, tasks, chunksize=4), 1):
            records.append(rec)
            if n % 50 == 0 or n == len(tasks):
                el = time.time() - t1
                log(f"{n}/{len(tasks)} videos, {el:.0f}s, eta {el / n * (len(tasks) - n):.0f}s")
    shutil.rmtree(cache)

    with open(os.path.join(out, "classes.txt"), "w") as f:
        f.write("".join(c + "\n" for c in CLASSES))
    for split in SPLITS:
        with open(os.path.join(out, split + ".csv"), "w") as f:
            for r in records:
                if r["split"] == split:
                    f.write(f"{r['path']} {r['label']}\n")
    with open(os.path.join(out, "samples.jsonl"), "w") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    meta = {"seed": a.seed, "width": W, "height": H, "frames": T, "fps": FPS,
            "classes": CLASSES, "per_class": counts, "shared_sources": shared,
            "sources": {p: [s["name"] for s in pools[p]] for p in pools},
            "skipped": [os.path.basename(v) for v, d in zip(vids, dec) if d is None]}
    with open(os.path.join(out, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "README"), "w") as f:
        f.write(readme_text(meta, len(records)))
    log(f"wrote {len(records)} videos to {out} in {time.time() - t0:.1f}s")


def readme_text(m, n):
    c = m["per_class"]
    lines = [
        "Motion-only classification dataset (scripts/make_motion_dataset.py)",
        "",
        "A textured patch cut from one real clip frame moves over a panning crop of another real",
        "clip. Classes are four time-reversal pairs; all classes draw background, texture, size,",
        "position, speed and camera pan from the same distributions, so only the direction of the",
        "motion separates a class from its reverse.",
        "",
        f"seed: {m['seed']}",
        f"size: {m['width']}x{m['height']}, {m['frames']} frames at {m['fps']} fps, H.264 yuv420p",
        f"classes ({len(m['classes'])}, label = line of classes.txt): " + ", ".join(m["classes"]),
        f"videos per class: pretrain {c['pretrain']}, probe_train {c['probe_train']}, "
        f"probe_test {c['probe_test']} ({n} videos in all)",
        "manifests: pretrain.csv, probe_train.csv, probe_test.csv (\"path label\", path relative"
        " to this folder)",
        "per-video parameters and raw-frame SHA-256: samples.jsonl",
        "",
        "source clips of pretrain: " + ", ".join(m["sources"]["pretrain"]),
        "source clips of probe_train and probe_test: " + ", ".join(m["sources"]["probe"]),
        ("(too few source groups: pretrain and probe share source clips, with disjoint seeds)"
         if m["shared_sources"] else
         "(pretrain and the probe splits share no source clip; every video is a distinct sample)"),
        "skipped (not decodable): " + (", ".join(m["skipped"]) or "none"),
        "",
        "Video i of a class and video i of its reverse (move_left/move_right, move_up/move_down,",
        "zoom_in/zoom_out, rotate_cw/rotate_ccw) are drawn from the same seed: same background",
        "footage, texture, size, middle-frame position and speed, opposite motion. Other videos",
        "use independent seeds.",
        "",
        "Verify with: scripts/make_motion_dataset.py --check <this folder>",
        ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- check

def ffprobe_file(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                        "-show_entries", "stream=codec_name,width,height,nb_read_packets",
                        "-of", "json", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    st = json.loads(r.stdout).get("streams", [])
    return st[0] if st else None


def check(folder, jobs):
    errs = []

    def err(m):
        if len(errs) < 50:
            log("check: " + m)
        errs.append(m)

    try:
        with open(os.path.join(folder, "dataset.json")) as f:
            meta = json.load(f)
        with open(os.path.join(folder, "classes.txt")) as f:
            classes = [l.strip() for l in f if l.strip()]
        with open(os.path.join(folder, "samples.jsonl")) as f:
            samples = {r["path"]: r for r in map(json.loads, f)}
    except (OSError, ValueError, KeyError) as e:
        log(f"check: cannot read dataset files: {e}")
        return 1
    if classes != meta["classes"]:
        err("classes.txt does not match dataset.json")
    seen = {}
    for split in SPLITS:
        try:
            lines = open(os.path.join(folder, split + ".csv")).read().splitlines()
        except OSError as e:
            err(f"{split}.csv: {e}")
            continue
        per = {}
        for ln, line in enumerate(lines, 1):
            parts = line.split(" ")
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= len(classes):
                err(f"{split}.csv:{ln}: bad line {line!r}")
                continue
            path, label = parts[0], int(parts[1])
            if path in seen:
                err(f"{path} listed in {seen[path]} and {split}")
            seen[path] = split
            if path.split("/")[:3] != ["videos", split, classes[label]]:
                err(f"{split}.csv:{ln}: {path} not under videos/{split}/{classes[label]}/")
            if not os.path.isfile(os.path.join(folder, path)):
                err(f"{split}.csv:{ln}: missing {path}")
            if path not in samples:
                err(f"{path} has no record in samples.jsonl")
            per[label] = per.get(label, 0) + 1
        want = meta["per_class"][split]
        for ci, cls in enumerate(classes):
            if per.get(ci, 0) != want:
                err(f"{split}: {cls} has {per.get(ci, 0)} videos, want {want}")
    # No shared clip: distinct frames everywhere, a seed used only by video i of a class and of
    # its reverse (never across splits); sources disjoint between
    # pretrain and the probe splits unless the dataset was made with shared sources.
    seeds = {}
    hashes = {}
    for path, r in samples.items():
        k = (tuple(r["seed"]), r["class"])
        if r["seed"][1] != SPLITS.index(r["split"]) or r["seed"][2] != r["label"] // 2:
            err(f"{path}: seed {r['seed']} does not belong to its split and class pair")
        if k in seeds:
            err(f"{path} and {seeds[k]} share a seed")
        seeds[k] = path
        if r["frames_sha256"] in hashes:
            err(f"{path} and {hashes[r['frames_sha256']]} have identical frames")
        hashes[r["frames_sha256"]] = path
    used = {"pretrain": set(), "probe": set()}
    for r in samples.values():
        used[SPLIT_POOL[r["split"]]] |= {r["bg_group"], r["obj_group"]}
    both = used["pretrain"] & used["probe"]
    if both and not meta.get("shared_sources"):
        err("pretrain and probe splits share source clips of: " + ", ".join(sorted(both)))
    # Every listed file decodes to the declared size and frame count.
    paths = sorted(seen)
    log(f"check: probing {len(paths)} files")
    with Pool(jobs) as pl:
        infos = pl.map(ffprobe_file, [os.path.join(folder, p) for p in paths], chunksize=8)
    for path, st in zip(paths, infos):
        if st is None:
            err(f"{path}: ffprobe finds no video stream")
            continue
        got = (st.get("codec_name"), st.get("width"), st.get("height"), int(st.get("nb_read_packets", -1)))
        want = ("h264", meta["width"], meta["height"], meta["frames"])
        if got != want:
            err(f"{path}: codec/size/frames {got}, want {want}")
    if errs:
        log(f"check: FAILED ({len(errs)} problems)")
        return 1
    log(f"check: OK ({len(paths)} videos, {len(classes)} classes, "
        f"{'shared' if meta.get('shared_sources') else 'disjoint'} pretrain/probe sources)")
    return 0


# ----------------------------------------------------------------------------- main

def parse_size(s):
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, got {s!r}")
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError("width and height must be even and >= 16")
    return (w, h)


def main():
    ap = argparse.ArgumentParser(
        description="Make a labelled dataset whose classes differ only in motion "
                    "(4 time-reversal pairs) from real Debian test clips.",
        epilog="Example: scripts/make_motion_dataset.py --out /tmp/motion --jobs 2; "
               "then scripts/make_motion_dataset.py --check /tmp/motion")
    ap.add_argument("--out", help="output folder (videos/ inside it is replaced)")
    ap.add_argument("--check", metavar="DIR", help="verify an existing dataset and exit")
    ap.add_argument("--videos", default="~/.cache/vjepa-train/videos",
                    help="folder of source clips (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    ap.add_argument("--size", type=parse_size, default=(112, 112), metavar="WxH",
                    help="frame size (default: 112x112)")
    ap.add_argument("--frames", type=int, default=32,
                    help=f"frames per video at {FPS} fps (default: %(default)s)")
    ap.add_argument("--pretrain", type=int, default=64, help="pretrain videos per class (default: %(default)s)")
    ap.add_argument("--probe-train", type=int, default=24,
                    help="probe-train videos per class (default: %(default)s)")
    ap.add_argument("--probe-test", type=int, default=100,
                    help="probe-test videos per class (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="parallel processes (default: number of CPUs)")
    a = ap.parse_args()
    if a.check:
        sys.exit(check(a.check, max(1, a.jobs)))
    if not a.out:
        ap.error("--out is required (or --check DIR)")
    if a.frames < 2 or min(a.pretrain, a.probe_train, a.probe_test) < 0 or a.jobs < 1:
        ap.error("--frames must be >= 2, counts >= 0, --jobs >= 1")
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            sys.exit(f"make_motion_dataset: {tool} not found (apt-get install ffmpeg)")
    generate(a)


if __name__ == "__main__":
    main()
