// vjepa-bench-dataworker: clips per second per core of the dataworker's full V-JEPA recipe
// (decode, crop + resize + flip, patchify, masks) against the ffmpeg CLI decoding the same frame
// ranges of the same files single-threaded (docs/benchmarks.md §2). See --help.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/common/bench_util.h"
#include "bench/dataworker/ffmpeg_cli.h"
#include "common/spec/job_spec.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "opencv2/core/utility.hpp"
#include "services/dataworker/batch/batch_builder.h"
#include "services/dataworker/batch/dataset.h"
#include "services/dataworker/video/frame_index.h"
#include "services/dataworker/video/video_reader.h"

namespace vjepa::bench {
namespace {

namespace fs = std::filesystem;
using dataworker::BatchBuilder;
using dataworker::BuiltBatch;

constexpr char kUsage[] =
    R"(vjepa-bench-dataworker: clips/s per core of the dataworker's V-JEPA recipe (16 frames,
frame step 4, random-resized-crop to 224x224, flip, patchify to uint8, both default masks) on one
producer thread, against the ceiling: the ffmpeg CLI decoding the same frame ranges of the same
files with -threads 1 to -f null, one invocation per file covering all its windows (its
-benchmark user+system CPU time).

Usage: vjepa-bench-dataworker [--input DIR] [--clips N] [--batch N] [--json] [--cache DIR]
  --input   a directory of video files, one configuration per file (default: a set generated
            with the ffmpeg CLI from the project's Debian test clips: H.264 640x360 with GOP 30
            and GOP 250, VP9 640x360 GOP 30; kept under --cache)
  --clips   clips timed per configuration (default 96)
  --batch   clips per batch (default 8)
  --json    one JSON object per configuration on stdout (keys: config, clips,
            clips_per_s_per_core, wall_clips_per_s, ceiling_clips_per_s, ratio, decode_s,
            convert_s, patchify_s, mask_s, frames_decoded_per_clip); the last line is the
            aggregate with "config": "all"
  --cache   where generated inputs live (default ~/.cache/vjepa-train/bench-videos)
Both rates are per CPU second (this thread's CPU time; ffmpeg's user+system time), so a busy
machine skews them less than wall time. The first pass over each file (its frame index) is
made before timing.
)";

struct Options {
  std::string input;
  std::string cache;
  int clips = 96;
  int batch = 8;
  bool json = false;
};

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Config {
  std::string name;
  std::vector<std::string> files;  // absolute paths
};

struct Result {
  std::string config;
  int64_t clips = 0;
  double cpu_s = 0;
  double wall_s = 0;
  double ceiling_cpu_s = 0;
  dataworker::StageSeconds stages;
  int64_t frames_decoded = 0;
};

nlohmann::json ToJson(const Result& r) {
  nlohmann::json j;
  j["config"] = r.config;
  j["clips"] = r.clips;
  const double per_core = r.cpu_s > 0 ? r.clips / r.cpu_s : 0;
  const double ceiling = r.ceiling_cpu_s > 0 ? r.clips / r.ceiling_cpu_s : 0;
  j["clips_per_s_per_core"] = per_core;
  j["wall_clips_per_s"] = r.wall_s > 0 ? r.clips / r.wall_s : 0;
  j["ceiling_clips_per_s"] = ceiling;
  j["ratio"] = ceiling > 0 ? per_core / ceiling : 0;
  const double n = std::max<int64_t>(r.clips, 1);
  j["decode_s"] = r.stages.decode / n;
  j["convert_s"] = r.stages.convert / n;
  j["patchify_s"] = r.stages.patchify / n;
  j["mask_s"] = r.stages.mask / n;
  j["frames_decoded_per_clip"] = r.frames_decoded / n;
  return j;
}

// Runs the recipe over `config` until `clips` clips are built; records every clip's frame range.
absl::StatusOr<Result> RunConfig(const Config& config, const Options& options,
                                 const std::string& scratch) {
  Result result;
  result.config = config.name;
  // A manifest over the files, relative to their directory.
  const std::string root = fs::path(config.files.front()).parent_path().string();
  const std::string manifest = absl::StrCat(scratch, "/", config.name, ".csv");
  // Each file listed as often as it takes to fill several batches: every row draws its own
  // window and box.
  RETURN_IF_ERROR(WriteManifest(manifest, config.files,
                                std::max<size_t>(config.files.size(), 4 * options.batch)));
  spec::JobSpec job;  // the vit_large recipe: 16 frames, step 4, 224x224, both default masks
  job.name = "bench";
  job.dataset.manifest = manifest;
  job.dataset.root = root;
  job.optim.batch_size = options.batch;
  ASSIGN_OR_RETURN(dataworker::DataRoots roots, dataworker::DataRoots::Create({root, scratch}));
  ASSIGN_OR_RETURN(std::shared_ptr<dataworker::Dataset> dataset,
                   dataworker::Dataset::Load(roots, manifest, root));
  dataworker::FrameIndexCache cache;
  dataworker::BuilderOptions builder_options;
  builder_options.index_cache = &cache;
  ASSIGN_OR_RETURN(std::unique_ptr<BatchBuilder> builder,
                   BatchBuilder::Create(job, dataset, builder_options));
  // The demux pass (once per file version) is not part of the steady state.
  std::map<std::string, double> fps;
  for (const auto& f : config.files) {
    ASSIGN_OR_RETURN(auto reader, dataworker::VideoReader::Open(f, builder_options.limits, &cache));
    fps[f] = reader->info().fps;
  }
  std::map<std::string, std::vector<FrameRange>> windows;
  const int64_t nb = builder->batches_per_epoch();
  if (nb < 1)
    return absl::InvalidArgumentError(absl::StrCat(config.name, ": fewer files than a batch"));
  for (int64_t g = 0; result.clips < options.clips; ++g) {
    const double cpu0 = ThreadCpuSeconds(), wall0 = MonotonicSeconds();
    ASSIGN_OR_RETURN(BuiltBatch batch, builder->Build(g / nb, g % nb));
    result.cpu_s += ThreadCpuSeconds() - cpu0;
    result.wall_s += MonotonicSeconds() - wall0;
    result.clips += static_cast<int64_t>(batch.clips.size());
    result.stages.decode += batch.seconds.decode;
    result.stages.convert += batch.seconds.convert;
    result.stages.patchify += batch.seconds.patchify;
    result.stages.mask += batch.seconds.mask;
    result.frames_decoded += batch.decode_stats.frames_decoded;
    for (const auto& source : batch.sources) {
      const std::string path = source.path;
      windows[path].push_back({source.frames.front(), source.frames.back()});
    }
    std::cerr << "  " << config.name << ": " << result.clips << "/" << options.clips << " clips\r"
              << std::flush;
  }
  std::cerr << "\n";
  for (const auto& [path, ranges] : windows) {
    ASSIGN_OR_RETURN(double cpu, FfmpegDecodeCpuSeconds(path, fps[path], ranges));
    result.ceiling_cpu_s += cpu;
  }
  return result;
}

int Main(int argc, char** argv) {
  Options options;
  options.cache = DefaultVideoCache();
  for (ArgReader args(argc, argv); args.Next();) {
    const std::string& a = args.arg();
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--json") {
      options.json = true;
    } else if (const char* v = args.Value("--input")) {
      options.input = v;
    } else if (const char* v = args.Value("--cache")) {
      options.cache = v;
    } else if (const char* v = args.Value("--clips")) {
      options.clips = std::atoi(v);
    } else if (const char* v = args.Value("--batch")) {
      options.batch = std::atoi(v);
    } else {
      std::cerr << "vjepa-bench-dataworker: unknown argument " << a << " (see --help)\n";
      return 2;
    }
  }
  cv::setNumThreads(1);  // one producer thread, as a dataworker runs each of its producers
  if (options.clips < 1 || options.batch < 1) {
    std::cerr << "vjepa-bench-dataworker: --clips and --batch must be at least 1\n";
    return 2;
  }
  std::vector<Config> configs;
  if (options.input.empty()) {
    auto generated = GenerateDefaultInputs(options.cache);
    if (!generated.ok()) {
      std::cerr << "vjepa-bench-dataworker: " << generated.status() << "\n";
      return 1;
    }
    for (auto& [name, files] : *generated) configs.push_back({name, files});
  } else {
    std::error_code ec;
    const std::vector<std::string> files = FilesIn(options.input, &ec);
    if (ec || files.empty()) {
      std::cerr << "vjepa-bench-dataworker: --input " << options.input << ": no video files ("
                << ec.message() << ")\n";
      return 2;
    }
    // One configuration per file: its windows are drawn from it alone.
    for (const auto& f : files) configs.push_back({fs::path(f).filename().string(), {f}});
  }
  const std::string scratch =
      (fs::temp_directory_path() / absl::StrCat("vjepa-bench-dataworker-", getpid())).string();
  fs::create_directories(scratch);
  Result all;
  all.config = "all";
  std::vector<Result> results;
  int status = 0;
  for (const auto& config : configs) {
    auto r = RunConfig(config, options, scratch);
    if (!r.ok()) {
      std::cerr << "vjepa-bench-dataworker: " << config.name << ": " << r.status() << "\n";
      status = 1;
      continue;
    }
    if (options.json) std::cout << ToJson(*r).dump() << std::endl;
    all.clips += r->clips;
    all.cpu_s += r->cpu_s;
    all.wall_s += r->wall_s;
    all.ceiling_cpu_s += r->ceiling_cpu_s;
    all.stages.decode += r->stages.decode;
    all.stages.convert += r->stages.convert;
    all.stages.patchify += r->stages.patchify;
    all.stages.mask += r->stages.mask;
    all.frames_decoded += r->frames_decoded;
    results.push_back(*r);
  }
  std::error_code ec;
  fs::remove_all(scratch, ec);
  results.push_back(all);
  if (options.json) std::cout << ToJson(all).dump() << std::endl;
  std::fprintf(stderr, "%-22s %6s %12s %12s %7s %9s %9s %9s %9s\n", "config", "clips",
               "clips/s/core", "ceiling", "ratio", "decode ms", "conv ms", "patch ms", "mask ms");
  for (const auto& r : results) {
    const auto j = ToJson(r);
    std::fprintf(stderr, "%-22s %6lld %12.2f %12.2f %7.3f %9.2f %9.2f %9.2f %9.2f\n",
                 r.config.c_str(), static_cast<long long>(r.clips),
                 j["clips_per_s_per_core"].get<double>(), j["ceiling_clips_per_s"].get<double>(),
                 j["ratio"].get<double>(), 1e3 * j["decode_s"].get<double>(),
                 1e3 * j["convert_s"].get<double>(), 1e3 * j["patchify_s"].get<double>(),
                 1e3 * j["mask_s"].get<double>());
  }
  return status;
}

}  // namespace
}  // namespace vjepa::bench

int main(int argc, char** argv) { return vjepa::bench::Main(argc, argv); }
