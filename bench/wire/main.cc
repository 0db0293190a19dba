// vjepa-bench-wire: the batch stream's throughput (BENCHMARKS.md §3). One dataworker server, in
// this process, streams ready-made batches to one trainer-side client over loopback gRPC (TCP
// and a unix socket); the ceiling is a plain memcpy of the same bytes in the same process. One
// JSON line per transport on stdout (with --json), the human table on stderr; the last line is
// the aggregate, "config": "all".
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/spec/job_spec.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "services/dataworker/dataworker_server.h"
#include "services/dataworker/malloc_tuning.h"
#include "services/dataworker/stream_client.h"
#include "services/dataworker/synthetic_producer.h"

namespace vjepa::bench {
namespace {

using dataworker::DataworkerConfig;
using dataworker::DataworkerServer;
using dataworker::SyntheticFactory;
using dataworker::SyntheticOptions;

constexpr char kUsage[] =
    R"(vjepa-bench-wire: MB/s of the dataworker's batch stream (StreamBatches over loopback gRPC)
against a plain memcpy of the same bytes in the same process.

Usage: vjepa-bench-wire [--config tcp,unix] [--json] [--batches N] [--warmup N] [--batch B]
                        [--frames T] [--crop S] [--buffer K] [--threads N]
  --config   comma-separated transports: tcp (127.0.0.1 port 0), unix (a unix socket).
             Default: tcp,unix.
  --json     one JSON object per transport on stdout (keys: config, transport, mb_per_s,
             memcpy_mb_per_s, ratio = mb_per_s / memcpy_mb_per_s, batches_per_s, clips_per_s,
             batch_mb, batches, goal_mb_per_s), then a last line with "config": "all" (total
             bytes over total time).
  --batches  timed batches per transport after the warm-up (default 20)
  --warmup   untimed batches first (default 3)
  --batch    clips per batch (default 24)
  --frames   frames per clip (default 16); with --crop (default 224), patch 16 and tubelet 2
             a clip is (T/2)(S/16)^2 tokens of 1536 uint8 values: 2.4 MB at 16x224^2
  --buffer   batches buffered per stream on the server (default 2)
  --threads  producer threads (default 1)
  --default_malloc  keep glibc's heap defaults (by default the process keeps large freed
             buffers for reuse, as vjepa-dataworker does: see malloc_tuning.h)
The server hands out ready-made batches (the same clip buffers every batch, two mask configs of
int16 indices); the client is the trainer's: it parses every message into a BatchMessage.
MB are 10^6 bytes of serialised messages.
)";

struct Options {
  std::vector<std::string> configs = {"tcp", "unix"};
  bool json = false;
  int batches = 20;
  int warmup = 3;
  int batch = 24;
  int frames = 16;
  int crop = 224;
  int buffer = 2;
  int threads = 1;
  bool default_malloc = false;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU seconds (user + system) of this process so far.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
         usage.ru_stime.tv_usec / 1e6;
}

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// Best of five copies of `bytes` (in 2.4 MB-sized pieces, like the clips) in MB/s.
double MemcpyMbPerS(int64_t bytes, int64_t piece) {
  std::vector<char> src(static_cast<size_t>(piece), 1);
  std::vector<char> dst(static_cast<size_t>(bytes));
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = Now();
    for (int64_t off = 0; off + piece <= bytes; off += piece) {
      std::memcpy(dst.data() + off, src.data(), static_cast<size_t>(piece));
    }
    const double dt = Now() - t0;
    // Keep the copies observable.
    volatile char sink = dst[static_cast<size_t>(bytes / 2)];
    (void)sink;
    best = std::max(best, static_cast<double>(bytes) / dt / 1e6);
  }
  return best;
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// A private directory for the token file and the unix socket, removed at exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "vjepa-bench-wire-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct Result {
  double seconds = 0;
  double cpu_seconds = 0;  // server and client together
  int64_t bytes = 0;
  int batches = 0;
  int64_t clips = 0;
};

int RunTransport(const Options& o, const std::string& transport, const std::string& tokens,
                 const TempDir& dir, Result* out) {
  SyntheticOptions synthetic;
  synthetic.batch_size = o.batch;
  synthetic.num_tokens = (o.frames / 2) * (o.crop / 16) * (o.crop / 16);
  synthetic.token_bytes = 2 * 16 * 16 * 3;
  synthetic.mask_configs = 2;
  synthetic.batches_per_epoch = 1'000'000;
  synthetic.reuse_clips = true;
  auto factory = std::make_shared<SyntheticFactory>(synthetic);

  DataworkerConfig config;
  config.listen = transport == "unix" ? "unix:" + dir.File("wire.sock") : "127.0.0.1:0";
  config.auth_tokens = tokens;
  config.service.threads = o.threads;
  config.service.stream_buffer_batches = o.buffer;
  config.service.standalone = dataworker::StandaloneJob{"bench", spec::JobSpec{}, 1};
  auto server = DataworkerServer::Create(config, factory);
  if (!server.ok()) {
    std::cerr << "vjepa-bench-wire: " << server.status() << "\n";
    return 1;
  }
  if (auto s = (*server)->Start(); !s.ok()) {
    std::cerr << "vjepa-bench-wire: " << s << "\n";
    return 1;
  }
  const std::string address =
      transport == "unix" ? config.listen : absl::StrCat("127.0.0.1:", (*server)->BoundPort());
  auto channel = dataworker::DataChannel(address);
  if (!channel.ok()) {
    std::cerr << "vjepa-bench-wire: " << channel.status() << "\n";
    return 1;
  }
  v1::StreamBatchesRequest request;
  request.set_job_id("bench");
  dataworker::BatchStreamReader reader(*channel, "bench-token-0000000000000000001", request);
  double t0 = 0, cpu0 = 0;
  for (int i = 0; i < o.warmup + o.batches; ++i) {
    if (i == o.warmup) {
      t0 = Now();
      cpu0 = CpuSeconds();
    }
    auto batch = reader.Next();
    if (!batch.ok()) {
      std::cerr << "vjepa-bench-wire: " << transport << ": batch " << i << ": " << batch.status()
                << "\n";
      return 1;
    }
    if (i >= o.warmup) {
      out->bytes += batch->bytes;
      out->clips += static_cast<int64_t>(batch->clips.size());
      ++out->batches;
    }
  }
  out->seconds = Now() - t0;
  out->cpu_seconds = CpuSeconds() - cpu0;
  reader.Cancel().IgnoreError();
  (*server)->Stop();
  return 0;
}

int Run(const Options& o) {
  TempDir dir;
  if (!dir.ok() ||
      !(std::ofstream(dir.File("tokens")) << "bench-token-0000000000000000001 bench worker\n")) {
    std::cerr << "vjepa-bench-wire: cannot write a token file under "
              << std::filesystem::temp_directory_path() << "\n";
    return 1;
  }
  const int64_t clip_bytes =
      int64_t{o.frames / 2} * (o.crop / 16) * (o.crop / 16) * 2 * 16 * 16 * 3;
  const int64_t batch_bytes = clip_bytes * o.batch;
  const double memcpy_mb_per_s = MemcpyMbPerS(batch_bytes, clip_bytes);
  std::cerr << "batch: " << o.batch << " clips of " << Num(clip_bytes / 1e6) << " MB ("
            << Num(batch_bytes / 1e6) << " MB); memcpy ceiling " << Num(memcpy_mb_per_s)
            << " MB/s\n";
  std::vector<std::string> lines;
  Result all;
  for (const std::string& transport : o.configs) {
    if (transport != "tcp" && transport != "unix") {
      std::cerr << "vjepa-bench-wire: --config: unknown transport \"" << transport
                << "\" (tcp, unix)\n";
      return 2;
    }
    Result r;
    if (int rc = RunTransport(o, transport, dir.File("tokens"), dir, &r); rc != 0) return rc;
    const double mb_per_s = r.bytes / r.seconds / 1e6;
    all.bytes += r.bytes;
    all.seconds += r.seconds;
    all.batches += r.batches;
    all.clips += r.clips;
    nlohmann::ordered_json j;
    j["config"] = transport;
    j["transport"] = transport == "tcp" ? "tcp 127.0.0.1" : "unix socket";
    j["mb_per_s"] = std::stod(Num(mb_per_s));
    j["memcpy_mb_per_s"] = std::stod(Num(memcpy_mb_per_s));
    j["ratio"] = std::stod(Num(mb_per_s / memcpy_mb_per_s));
    j["batches_per_s"] = std::stod(Num(r.batches / r.seconds));
    j["clips_per_s"] = std::stod(Num(r.clips / r.seconds));
    j["batch_mb"] = std::stod(Num(static_cast<double>(r.bytes) / r.batches / 1e6));
    j["batches"] = r.batches;
    j["cpu_s_per_gb"] = std::stod(Num(r.cpu_seconds / (r.bytes / 1e9)));
    j["goal_mb_per_s"] = 1000;
    j["batch"] = o.batch;
    j["frames"] = o.frames;
    j["crop"] = o.crop;
    j["peak_rss_mb"] = std::stod(Num(PeakRssMb()));
    j["malloc"] = o.default_malloc ? "glibc defaults" : "large buffers kept in the heap";
    lines.push_back(j.dump());
    std::fprintf(stderr,
                 "%-5s %9.1f MB/s  %6.2f batches/s  %7.1f clips/s  ratio %.3f  %.2f CPU s/GB  "
                 "(%d batches, %.2f s)\n",
                 transport.c_str(), mb_per_s, r.batches / r.seconds, r.clips / r.seconds,
                 mb_per_s / memcpy_mb_per_s, r.cpu_seconds / (r.bytes / 1e9), r.batches, r.seconds);
  }
  const double mb_per_s = all.bytes / all.seconds / 1e6;
  nlohmann::ordered_json j;
  j["config"] = "all";
  j["mb_per_s"] = std::stod(Num(mb_per_s));
  j["memcpy_mb_per_s"] = std::stod(Num(memcpy_mb_per_s));
  j["ratio"] = std::stod(Num(mb_per_s / memcpy_mb_per_s));
  j["batches_per_s"] = std::stod(Num(all.batches / all.seconds));
  j["configs"] = o.configs.size();
  j["goal_mb_per_s"] = 1000;
  lines.push_back(j.dump());
  std::fprintf(stderr, "%-5s %9.1f MB/s  %6.2f batches/s  ratio %.3f\n", "all", mb_per_s,
               all.batches / all.seconds, mb_per_s / memcpy_mb_per_s);
  if (o.json) {
    for (const auto& l : lines) std::cout << l << "\n";
  }
  return 0;
}

bool ParseInt(const std::string& flag, const std::string& value, int min, int* out) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < min || v > 1'000'000) {
    std::cerr << "vjepa-bench-wire: " << flag << ": expected an integer >= " << min << ", got \""
              << value << "\"\n";
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

}  // namespace
}  // namespace vjepa::bench

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;  // warnings and up
  // As vjepa-dataworker does (and trainers should): without it every 2.4 MB message costs fresh
  // pages. --default_malloc measures glibc's defaults.
  bool tune_malloc = true;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--default_malloc") tune_malloc = false;
  }
  if (tune_malloc) vjepa::dataworker::KeepLargeBuffersInHeap();
  vjepa::bench::Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    const size_t eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto next = [&]() -> bool {
      if (eq != std::string::npos) return true;
      if (i + 1 >= argc) {
        std::cerr << "vjepa-bench-wire: " << a << ": needs a value\n";
        return false;
      }
      value = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      std::cout << vjepa::bench::kUsage;
      return 0;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--default_malloc") {
      o.default_malloc = true;
    } else if (a == "--config") {
      if (!next()) return 2;
      o.configs.clear();
      std::stringstream ss(value);
      for (std::string c; std::getline(ss, c, ',');) o.configs.push_back(c);
      if (value == "all") o.configs = {"tcp", "unix"};
    } else if (a == "--batches" || a == "--warmup" || a == "--batch" || a == "--frames" ||
               a == "--crop" || a == "--buffer" || a == "--threads") {
      if (!next()) return 2;
      int* target = a == "--batches"  ? &o.batches
                    : a == "--warmup" ? &o.warmup
                    : a == "--batch"  ? &o.batch
                    : a == "--frames" ? &o.frames
                    : a == "--crop"   ? &o.crop
                    : a == "--buffer" ? &o.buffer
                                      : &o.threads;
      const int min = a == "--warmup" ? 0 : 1;
      if (!vjepa::bench::ParseInt(a, value, min, target)) return 2;
    } else {
      std::cerr << "vjepa-bench-wire: unknown argument \"" << argv[i] << "\" (see --help)\n";
      return 2;
    }
  }
  if (o.frames % 2 != 0 || o.crop % 16 != 0) {
    std::cerr << "vjepa-bench-wire: --frames must be even and --crop a multiple of 16\n";
    return 2;
  }
  return vjepa::bench::Run(o);
}
