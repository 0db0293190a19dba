#include "services/dataworker/check.h"

#include <exception>
#include <filesystem>
#include <map>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/masking/random.h"
#include "nlohmann/json.hpp"
#include "services/dataworker/batch/dataset.h"
#include "services/dataworker/batch/sampling.h"
#include "services/dataworker/batch/transforms.h"
#include "services/dataworker/video/bad_video.h"
#include "services/dataworker/video/video_reader.h"

namespace vjepa::dataworker {

const char kCheckUsage[] =
    R"(vjepa-dataworker check: the dataset pre-flight. Opens every video of a manifest and decodes
one training clip of it, as a dataworker would.

Usage: vjepa-dataworker check --manifest M --data_root R[,R2...] [--root DIR] [--json]
                              [--frames T] [--frame_step S] [--crop C]
  --manifest    the manifest ("path label" per line): absolute, relative to the working
                directory when it exists there, else relative to the first root
  --data_root   comma-separated directories the videos must lie under
  --root        base directory of relative video paths (default: the manifest's directory)
  --json        one JSON object per file, then a summary object ("summary": true)
  --frames, --frame_step, --crop   the clip to decode (default 16, 4, 224)
Per file: ok (codec, size, fps, frames, duration) or the reason it would be quarantined.
Exit code: 0 when every file is ok, 1 when some are not, 2 for bad arguments.
)";

namespace {

struct FileResult {
  bool ok = false;
  std::string reason;  // a bad-video reason, or "timeout" / "error"
  std::string detail;
  VideoInfo info;
};

FileResult Fail(const absl::Status& s) {
  FileResult r;
  if (auto reason = BadVideoReasonOf(s)) {
    r.reason = std::string(BadVideoReasonName(*reason));
  } else if (absl::IsDeadlineExceeded(s)) {
    r.reason = "timeout";
  } else {
    r.reason = "error";
  }
  r.detail = BadVideoDetail(s);
  return r;
}

FileResult CheckFile(const Dataset& dataset, int64_t sample, const CheckOptions& o) {
  absl::StatusOr<std::string> path = dataset.ResolvedPath(sample);
  if (!path.ok()) return Fail(path.status());
  ReaderLimits limits;
  limits.open_timeout = absl::Seconds(o.seconds_per_file);
  const absl::Time deadline = absl::Now() + absl::Seconds(o.seconds_per_file);
  absl::StatusOr<std::unique_ptr<VideoReader>> reader = VideoReader::Open(*path, limits);
  if (!reader.ok()) return Fail(reader.status());
  const VideoInfo info = (*reader)->info();
  // One training clip: the sampler's frames and crop box for this file.
  masking::RandomStream start =
      masking::RandomStream::ForBatch(234, masking::DrawKind::kClipStart, 0, sample);
  masking::RandomStream crop =
      masking::RandomStream::ForBatch(234, masking::DrawKind::kCrop, 0, sample);
  const std::vector<int64_t> indices =
      TrainingClipIndices(info.frames, o.frames, o.frame_step, start);
  const CropBox box = RandomResizedCrop(info.width, info.height, RrcParams{}, crop);
  FrameScratch scratch;
  int64_t converted = 0;
  absl::Status s = (*reader)->DecodeFrames(
      indices,
      [&](int64_t, const FrameView& frame) {
        ++converted;
        return ConvertTrainingFrame(frame, box, o.crop, &scratch);
      },
      deadline);
  if (!s.ok()) return Fail(s);
  FileResult r;
  r.ok = converted > 0;
  if (!r.ok) {
    r.reason = std::string(BadVideoReasonName(BadVideoReason::kNoFrames));
    r.detail = "no frame decoded";
  }
  r.info = info;
  return r;
}

}  // namespace

int ParseCheckArgs(const std::vector<std::string>& args, CheckOptions* o, std::ostream& out,
                   std::ostream& err) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (flag == "--help" || flag == "-h") {
      out << kCheckUsage;
      return kCheckAllOk;
    }
    if (flag == "--json") {
      o->json = true;
      continue;
    }
    const bool known = flag == "--manifest" || flag == "--data_root" || flag == "--root" ||
                       flag == "--frames" || flag == "--frame_step" || flag == "--crop";
    if (!known) {
      err << "vjepa-dataworker check: unknown argument \"" << args[i] << "\" (see --help)\n";
      return kCheckBadArguments;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        err << "vjepa-dataworker check: " << flag << ": needs a value\n";
        return kCheckBadArguments;
      }
      value = args[++i];
    }
    if (flag == "--manifest") {
      // On the command line a relative manifest that exists is taken from the working directory
      // (it must still lie under a data root).
      std::error_code ec;
      o->manifest = (!value.empty() && value[0] != '/' && std::filesystem::exists(value, ec))
                        ? std::filesystem::absolute(value, ec).string()
                        : value;
    } else if (flag == "--data_root") {
      o->data_roots = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (flag == "--root") {
      o->root = value;
    } else {
      int v = 0;
      if (!absl::SimpleAtoi(value, &v) || v < 1 || v > 100000) {
        err << "vjepa-dataworker check: " << flag << ": expected a positive integer, got \""
            << value << "\"\n";
        return kCheckBadArguments;
      }
      (flag == "--frames" ? o->frames : flag == "--frame_step" ? o->frame_step : o->crop) = v;
    }
  }
  if (o->manifest.empty() || o->data_roots.empty()) {
    err << "vjepa-dataworker check: --manifest and --data_root are required (see --help)\n";
    return kCheckBadArguments;
  }
  return -1;
}

int RunCheck(const CheckOptions& o, std::ostream& out, std::ostream& err) {
  absl::StatusOr<DataRoots> roots = DataRoots::Create(o.data_roots);
  if (!roots.ok()) {
    err << "vjepa-dataworker check: --data_root: " << roots.status().message() << "\n";
    return kCheckBadArguments;
  }
  absl::StatusOr<std::shared_ptr<Dataset>> dataset = Dataset::Load(*roots, o.manifest, o.root);
  if (!dataset.ok()) {
    err << "vjepa-dataworker check: --manifest: " << dataset.status().message() << "\n";
    return kCheckBadArguments;
  }
  int64_t ok = 0;
  std::map<std::string, int64_t> reasons;
  for (int64_t i = 0; i < (*dataset)->size(); ++i) {
    FileResult r;
    try {
      r = CheckFile(**dataset, i, o);
    } catch (const std::exception& e) {
      r = FileResult{false, "error", absl::StrCat("exception: ", e.what()), {}};
    }
    const std::string& path = (*dataset)->entry(i).path;
    if (r.ok) {
      ++ok;
    } else {
      ++reasons[r.reason];
    }
    if (o.json) {
      nlohmann::ordered_json j;
      j["sample"] = i;
      j["path"] = path;
      j["ok"] = r.ok;
      if (r.ok) {
        j["codec"] = r.info.codec;
        j["pixel_format"] = r.info.pixel_format;
        j["width"] = r.info.width;
        j["height"] = r.info.height;
        j["rotation"] = r.info.rotation;
        j["fps"] = r.info.fps;
        j["frames"] = r.info.frames;
        j["duration_s"] = r.info.duration_s;
        j["file_bytes"] = r.info.file_bytes;
      } else {
        j["reason"] = r.reason;
        j["detail"] = r.detail;
      }
      out << j.dump() << "\n";
    } else if (r.ok) {
      out << absl::StrFormat(
          "ok   %s: %s %dx%d%s, %.3f fps, %d frames, %.2f s\n", path, r.info.codec, r.info.width,
          r.info.height,
          r.info.rotation ? absl::StrCat(" (rotated ", r.info.rotation, ")") : std::string(),
          r.info.fps, r.info.frames, r.info.duration_s);
    } else {
      out << absl::StrFormat("bad  %s: %s: %s\n", path, r.reason, r.detail);
    }
  }
  const int64_t bad = (*dataset)->size() - ok;
  if (o.json) {
    nlohmann::ordered_json j;
    j["summary"] = true;
    j["files"] = (*dataset)->size();
    j["ok"] = ok;
    j["bad"] = bad;
    j["reasons"] = reasons;
    j["manifest_sha256"] = (*dataset)->identity().manifest_sha256;
    out << j.dump() << "\n";
  } else {
    std::string why;
    for (const auto& [reason, n] : reasons) {
      absl::StrAppend(&why, why.empty() ? " (" : ", ", reason, " ", n);
    }
    if (!why.empty()) why += ")";
    out << absl::StrFormat("%d files: %d ok, %d bad%s\n", (*dataset)->size(), ok, bad, why);
  }
  return bad == 0 ? kCheckAllOk : kCheckSomeBad;
}

}  // namespace vjepa::dataworker
