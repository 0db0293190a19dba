// vjepa-bench-e2e: trainer clips/s through the whole service path (local cluster: coordinator,
// dataworkers, one trainer, the `micro` config) against the same trainer step fed from an
// in-memory batch, both pinned to the same cores (BENCHMARKS §4). See --help.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "bench/common/bench_util.h"
#include "bench/dataworker/ffmpeg_cli.h"
#include "common/rpc/client.h"
#include "common/spec/job_spec.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "vjepa/v1/job.grpc.pb.h"

extern char** environ;

namespace vjepa::bench {
namespace {

namespace fs = std::filesystem;

constexpr char kUsage[] =
    R"(vjepa-bench-e2e: trainer clips/s through the service path against the in-memory ceiling.

Starts the local cluster (deploy/local/cluster up: a coordinator, N dataworkers, one trainer),
submits the `micro` job (model and optimizer from examples/jobs/micro.yaml; the dataset: a
manifest over short H.264 640x360 clips generated with the ffmpeg CLI from the Debian test videos,
shared with vjepa-bench-dataworker) for warm-up + timed steps, and measures the trainer over the
timed steps. The trainer and the dataworkers are pinned to disjoint cores (taskset); the trainer
runs with --torch_threads = its number of cores. The ceiling is vjepa-bench-trainer-step --config
micro under the same taskset and thread count. The cluster is stopped at the end, also on errors.

Usage: vjepa-bench-e2e [--json] [--steps N] [--warmup_steps N] [--dataworkers N]
                       [--trainer_cpus LIST] [--dataworker_cpus LIST] [OPTIONS]
  --json             one JSON line on stdout: clips_per_s, in_memory_clips_per_s, ratio,
                     data_wait_fraction, cores_needed, dataworkers, steps, warmup_steps,
                     trainer_cpus, dataworker_cpus, config, and extras (see below)
  --steps N          timed steps (default 40)
  --warmup_steps N   steps before the timed window, not timed (default 5)
  --dataworkers N    dataworkers (default 1); each runs --threads = max(1, cores / N)
  --trainer_cpus L   taskset CPU list of the trainer (default "0")
  --dataworker_cpus L
                     taskset CPU list of the dataworkers (default "1"); must not overlap
  --job FILE         the job spec (default <source>/examples/jobs/micro.yaml)
  --input DIR        video files for the manifest (default: the generated h264_360p_gop30 set
                     under --cache)
  --cache DIR        where generated inputs live (default ~/.cache/vjepa-train/bench-videos)
  --bin DIR          the binaries (default: the directory of this program)
  --launcher FILE    the cluster launcher (default <source>/deploy/local/cluster)
  --dir DIR          the cluster's directory (default: a new directory under $TMPDIR, removed
                     at the end unless --keep_dir)
  --keep_dir         keep the cluster's directory (logs) at the end
  --timeout SECONDS  bound for the whole service run (default 1200)
  -h, --help         this help

Measured: the trainer's /metrics are scraped every 20 ms; the window opens at the first scrape
with vjepa_trainer_steps_total >= warm-up and closes at warm-up + steps. Over it:
  clips_per_s        = batch x steps in window / (sum of the trainer's step seconds in window)
                       (vjepa_trainer_step_seconds_sum: data wait + step, per step)
  data_wait_fraction = vjepa_trainer_data_wait_seconds_total delta / step seconds delta
  wall_clips_per_s   = batch x steps in window / wall time between the two scrapes
  cores_needed       = the job's runtime.dataworker_cores_needed from GetJob at the window's end
                       (the last non-zero value seen if it reads 0 then)
  in_memory_clips_per_s = clips_per_s of vjepa-bench-trainer-step --config micro (median step)
)";

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Options {
  bool json = false;
  int steps = 40;
  int warmup = 5;
  int dataworkers = 1;
  std::string trainer_cpus = "0";
  std::string dataworker_cpus = "1";
  std::string job;
  std::string input;
  std::string cache;
  std::string bin;
  std::string launcher;
  std::string dir;
  bool keep_dir = false;
  int timeout = 1200;
};

void Progress(const std::string& line) { std::cerr << "vjepa-bench-e2e: " << line << std::endl; }

// The CPUs of a taskset list ("0", "1-3,6"); empty on a malformed list.
std::vector<int> ParseCpuList(const std::string& list) {
  std::vector<int> cpus;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    std::vector<absl::string_view> range = absl::StrSplit(part, '-');
    int lo = 0, hi = 0;
    if (range.size() == 1 && absl::SimpleAtoi(range[0], &lo)) {
      hi = lo;
    } else if (range.size() != 2 || !absl::SimpleAtoi(range[0], &lo) ||
               !absl::SimpleAtoi(range[1], &hi)) {
      return {};
    }
    if (lo < 0 || hi < lo || hi > 4095) return {};
    for (int c = lo; c <= hi; ++c) {
      if (std::find(cpus.begin(), cpus.end(), c) == cpus.end()) cpus.push_back(c);
    }
  }
  return cpus;
}

// Runs argv (argv[0] a path, or looked up on PATH); stdout is captured, stderr goes to ours.
absl::StatusOr<std::pair<int, std::string>> Run(const std::vector<std::string>& argv) {
  int out[2];
  // Close-on-exec: only the child's stdout (the dup2 copy) stays open, so processes it leaves
  // running (the cluster's supervisors) do not hold the pipe open.
  if (pipe2(out, O_CLOEXEC) != 0)
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return absl::InternalError(absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc)));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(out[0], buf, sizeof(buf));
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return std::make_pair(code, text);
}

// GET http://127.0.0.1:port/metrics; empty on any failure.
std::string ScrapeMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string text;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[16384];
      const double deadline = MonotonicSeconds() + 5;
      while (MonotonicSeconds() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 500) <= 0) continue;
        const ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return text;
}

// The value of an unlabelled sample `name` in Prometheus text; nullopt when absent.
std::optional<double> MetricValue(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() <= name.size() || line.substr(0, name.size()) != name) continue;
    if (line[name.size()] != ' ') continue;
    double v = 0;
    std::string value(absl::StripAsciiWhitespace(line.substr(name.size() + 1)));
    if (absl::SimpleAtod(value, &v)) return v;
  }
  return std::nullopt;
}

struct Sample {
  double wall = 0;
  double steps = 0;
  double step_seconds_sum = 0;
  double wait_seconds = 0;
};

std::optional<Sample> ScrapeSample(int port) {
  const std::string text = ScrapeMetrics(port);
  auto steps = MetricValue(text, "vjepa_trainer_steps_total");
  auto sum = MetricValue(text, "vjepa_trainer_step_seconds_sum");
  auto wait = MetricValue(text, "vjepa_trainer_data_wait_seconds_total");
  if (!steps || !sum || !wait) return std::nullopt;
  return Sample{MonotonicSeconds(), *steps, *sum, *wait};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct InMemory {
  double clips_per_s = 0;
  double step_s = 0;
};

// vjepa-bench-trainer-step --config micro under taskset: its clips_per_s.
absl::StatusOr<InMemory> RunInMemory(const Options& o, int threads) {
  std::vector<std::string> argv = {"taskset",
                                   "-c",
                                   o.trainer_cpus,
                                   o.bin + "/vjepa-bench-trainer-step",
                                   "--config",
                                   "micro",
                                   "--json",
                                   absl::StrCat("--threads=", threads),
                                   absl::StrCat("--steps=", std::max(o.steps, 5)),
                                   absl::StrCat("--warmup=", o.warmup)};
  Progress(absl::StrCat("in-memory ceiling: ", absl::StrJoin(argv, " ")));
  ASSIGN_OR_RETURN(auto result, Run(argv));
  if (result.first != 0) {
    return absl::InternalError(
        absl::StrCat("vjepa-bench-trainer-step exited with status ", result.first));
  }
  std::vector<std::string> lines = absl::StrSplit(result.second, '\n', absl::SkipEmpty());
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    nlohmann::json j = nlohmann::json::parse(*it, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("config", "") == "micro" && j.contains("clips_per_s")) {
      return InMemory{j["clips_per_s"].get<double>(), j.value("step_s", 0.0)};
    }
  }
  return absl::InternalError("vjepa-bench-trainer-step printed no micro JSON line");
}

// A manifest of `rows` rows over the video files, written to `path`; returns the files' directory.
absl::StatusOr<std::string> WriteInputManifest(const Options& o, const std::string& path,
                                               int rows) {
  std::vector<std::string> files;
  if (o.input.empty()) {
    ASSIGN_OR_RETURN(auto generated, GenerateDefaultInputs(o.cache));
    for (auto& [name, list] : generated) {
      if (name == "h264_360p_gop30") files = list;
    }
  } else {
    std::error_code ec;
    files = FilesIn(o.input, &ec);
  }
  if (files.empty()) return absl::NotFoundError("no input video files");
  const std::string root = fs::canonical(fs::path(files.front()).parent_path()).string();
  RETURN_IF_ERROR(WriteManifest(path, files, rows));
  return root;
}

struct Cluster {
  std::string launcher;
  std::string dir;
  bool up_called = false;
  ~Cluster() { Down(); }
  void Down() {
    if (!up_called) return;
    up_called = false;
    Progress(absl::StrCat("stopping the cluster in ", dir));
    auto r = Run({launcher, "down", "--dir", dir});
    if (!r.ok() || r->first != 0) Progress("cluster down failed; see its messages above");
  }
};

struct ServiceResult {
  double clips_per_s = 0;
  double wall_clips_per_s = 0;
  double data_wait_fraction = 0;
  double cores_needed = 0;
  double job_clips_per_s = 0;
  double job_data_wait_fraction = 0;
  double steps_in_window = 0;
  int64_t batch = 0;
  std::string job_id;
  std::string job_state;
};

absl::StatusOr<ServiceResult> RunService(const Options& o, const std::string& dir, int threads,
                                         Cluster& cluster) {
  ServiceResult result;
  const std::string manifest = dir + "/manifest.csv";
  const int total = o.warmup + o.steps;
  ASSIGN_OR_RETURN(std::string root, WriteInputManifest(o, manifest, 128));
  // The job: micro's model and optimizer, this manifest, warm-up + steps, a checkpoint only at
  // the end (no checkpoint inside the timed window).
  const std::string text = ReadFile(o.job);
  if (text.empty()) return absl::NotFoundError(absl::StrCat(o.job, ": empty or unreadable"));
  std::vector<std::string> overrides = {
      absl::StrCat("dataset.manifest=", manifest),
      absl::StrCat("dataset.root=", root),
      absl::StrCat("optim.steps=", total),
      absl::StrCat("checkpoint.every_steps=", total),
      "resources.trainers=1",
      absl::StrCat("resources.dataworkers=", o.dataworkers),
      absl::StrCat("resources.torch_threads=", threads),
  };
  ASSIGN_OR_RETURN(spec::JobSpec job, spec::ParseJobSpec(text, overrides));
  result.batch = job.optim.batch_size;

  const int dw_threads =
      std::max<int>(1, static_cast<int>(ParseCpuList(o.dataworker_cpus).size()) / o.dataworkers);
  std::vector<std::string> up = {o.launcher,
                                 "up",
                                 "--dir",
                                 dir,
                                 "--dataworkers",
                                 std::to_string(o.dataworkers),
                                 "--trainers",
                                 "1",
                                 "--data_root",
                                 absl::StrCat(root, ",", dir),
                                 "--bin",
                                 o.bin,
                                 "--taskset_trainer",
                                 o.trainer_cpus,
                                 "--taskset_dataworker",
                                 o.dataworker_cpus,
                                 absl::StrCat("--trainer_flag=--torch_threads=", threads),
                                 absl::StrCat("--dataworker_flag=--threads=", dw_threads)};
  Progress(absl::StrCat("starting the cluster: ", absl::StrJoin(up, " ")));
  cluster.up_called = true;  // `down` also after a failed or interrupted `up`
  ASSIGN_OR_RETURN(auto up_result, Run(up));
  if (up_result.first != 0) {
    return absl::UnavailableError(absl::StrCat("cluster up exited with status ", up_result.first,
                                               " (logs in ", dir, "/logs)"));
  }
  std::string address, token;
  for (absl::string_view line : absl::StrSplit(up_result.second, '\n')) {
    if (absl::ConsumePrefix(&line, "VJEPA_COORDINATOR=")) address = std::string(line);
    if (absl::ConsumePrefix(&line, "VJEPA_TOKEN=")) token = std::string(line);
  }
  if (g_stop) return absl::CancelledError("interrupted");
  if (address.empty() || token.empty()) {
    return absl::InternalError("cluster up printed no VJEPA_COORDINATOR/VJEPA_TOKEN");
  }
  rpc::ClientOptions client;
  client.address = address;
  client.token = token;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, rpc::MakeChannel(client));
  auto jobs = v1::JobService::NewStub(channel);

  v1::SubmitJobRequest submit;
  submit.set_spec_yaml(spec::ToYaml(job));
  submit.set_client_request_id(absl::StrCat("bench-e2e-", getpid()));
  v1::SubmitJobResponse submitted;
  {
    auto context = rpc::MakeContext(token, absl::Seconds(30));
    grpc::Status s = jobs->SubmitJob(context.get(), submit, &submitted);
    if (!s.ok()) return absl::InternalError(absl::StrCat("SubmitJob: ", s.error_message()));
  }
  result.job_id = submitted.job().id();
  Progress(absl::StrCat("submitted job ", result.job_id, ": ", total, " steps (", o.warmup,
                        " warm-up), batch ", result.batch));

  auto get_job = [&]() -> std::optional<v1::Job> {
    v1::GetJobRequest request;
    request.set_id(result.job_id);
    v1::GetJobResponse response;
    auto context = rpc::MakeContext(token, absl::Seconds(5));
    if (!jobs->GetJob(context.get(), request, &response).ok()) return std::nullopt;
    return response.job();
  };

  const std::string port_files[] = {dir + "/trainer-0.port", dir + "/trainer-0.metrics_port"};
  const double deadline = MonotonicSeconds() + o.timeout;
  int port = 0;
  std::optional<Sample> start, end;
  double last_get = 0, last_report = 0;
  double cores_seen = 0;
  while (!end) {
    if (g_stop) return absl::CancelledError("interrupted");
    if (MonotonicSeconds() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("the timed steps did not finish within ",
                                                      o.timeout, " s (see ", dir, "/logs)"));
    }
    if (MonotonicSeconds() - last_get > 1.0) {
      last_get = MonotonicSeconds();
      if (auto j = get_job()) {
        if (j->runtime().dataworker_cores_needed() > 0) {
          cores_seen = j->runtime().dataworker_cores_needed();
        }
        if (j->state() == v1::FAILED || j->state() == v1::CANCELLED) {
          return absl::InternalError(absl::StrCat(
              "job ", result.job_id, " ", v1::JobState_Name(j->state()), ": ", j->message()));
        }
        if (MonotonicSeconds() - last_report > 10) {
          last_report = MonotonicSeconds();
          Progress(absl::StrCat("job ", v1::JobState_Name(j->state()), " step ", j->step(), "/",
                                j->total_steps(), " clips/s ", j->runtime().clips_per_second(),
                                " data_wait ", j->runtime().data_wait_fraction()));
        }
      }
    }
    if (port == 0) {
      for (const auto& f : port_files) {
        int p = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(f)), &p) && p > 0) port = p;
        if (port) break;
      }
    }
    if (port != 0) {
      if (auto s = ScrapeSample(port)) {
        if (!start && s->steps >= o.warmup) {
          start = s;
          Progress(absl::StrCat("timed window opens at step ", s->steps));
        } else if (start && s->steps >= total) {
          end = s;
        } else if (start && s->steps < start->steps) {
          return absl::InternalError("the trainer restarted inside the timed window");
        }
      }
    }
    usleep(20000);
  }
  Progress(absl::StrCat("timed window closes at step ", end->steps));
  const double steps = end->steps - start->steps;
  const double step_s = end->step_seconds_sum - start->step_seconds_sum;
  const double wall = end->wall - start->wall;
  if (steps < 1 || step_s <= 0) return absl::InternalError("no steps in the timed window");
  result.steps_in_window = steps;
  result.clips_per_s = result.batch * steps / step_s;
  result.wall_clips_per_s = result.batch * steps / wall;
  result.data_wait_fraction = (end->wait_seconds - start->wait_seconds) / step_s;
  if (auto j = get_job()) {
    result.cores_needed = j->runtime().dataworker_cores_needed();
    result.job_clips_per_s = j->runtime().clips_per_second();
    result.job_data_wait_fraction = j->runtime().data_wait_fraction();
    result.job_state = v1::JobState_Name(j->state());
  }
  if (result.cores_needed <= 0) result.cores_needed = cores_seen;
  return result;
}

int Main(int argc, char** argv) {
  Options o;
  o.cache = DefaultVideoCache();
  o.job = absl::StrCat(VJEPA_SOURCE_DIR, "/examples/jobs/micro.yaml");
  o.launcher = absl::StrCat(VJEPA_SOURCE_DIR, "/deploy/local/cluster");
  {
    std::error_code ec;
    o.bin = fs::read_symlink("/proc/self/exe", ec).parent_path().string();
  }
  for (ArgReader args(argc, argv); args.Next();) {
    const std::string& a = args.arg();
    auto as_int = [&](const char* flag, const char* v, int min) {
      int n = 0;
      if (!absl::SimpleAtoi(v, &n) || n < min || n > 1000000) {
        std::cerr << "vjepa-bench-e2e: " << flag << ": must be an integer >= " << min << ", got \""
                  << v << "\"\n";
        std::exit(2);
      }
      return n;
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--keep_dir") {
      o.keep_dir = true;
    } else if (const char* v = args.Value("--steps")) {
      o.steps = as_int("--steps", v, 1);
    } else if (const char* v = args.Value("--warmup_steps")) {
      o.warmup = as_int("--warmup_steps", v, 1);
    } else if (const char* v = args.Value("--dataworkers")) {
      o.dataworkers = as_int("--dataworkers", v, 1);
    } else if (const char* v = args.Value("--trainer_cpus")) {
      o.trainer_cpus = v;
    } else if (const char* v = args.Value("--dataworker_cpus")) {
      o.dataworker_cpus = v;
    } else if (const char* v = args.Value("--job")) {
      o.job = v;
    } else if (const char* v = args.Value("--input")) {
      o.input = v;
    } else if (const char* v = args.Value("--cache")) {
      o.cache = v;
    } else if (const char* v = args.Value("--bin")) {
      o.bin = v;
    } else if (const char* v = args.Value("--launcher")) {
      o.launcher = v;
    } else if (const char* v = args.Value("--dir")) {
      o.dir = v;
    } else if (const char* v = args.Value("--timeout")) {
      o.timeout = as_int("--timeout", v, 1);
    } else {
      std::cerr << "vjepa-bench-e2e: unknown argument \"" << a << "\" (see --help)\n";
      return 2;
    }
  }
  const std::vector<int> trainer_cpus = ParseCpuList(o.trainer_cpus);
  const std::vector<int> dataworker_cpus = ParseCpuList(o.dataworker_cpus);
  if (trainer_cpus.empty() || dataworker_cpus.empty()) {
    std::cerr << "vjepa-bench-e2e: --trainer_cpus and --dataworker_cpus must be CPU lists such as "
                 "0 or 1-3\n";
    return 2;
  }
  for (int c : trainer_cpus) {
    if (std::find(dataworker_cpus.begin(), dataworker_cpus.end(), c) != dataworker_cpus.end()) {
      std::cerr << "vjepa-bench-e2e: --trainer_cpus and --dataworker_cpus overlap (CPU " << c
                << ")\n";
      return 2;
    }
  }
  const int threads = static_cast<int>(trainer_cpus.size());
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  absl::StatusOr<InMemory> in_memory = RunInMemory(o, threads);
  if (!in_memory.ok()) {
    std::cerr << "vjepa-bench-e2e: in-memory ceiling: " << in_memory.status() << "\n";
    return 1;
  }
  Progress(absl::StrCat("in-memory: ", in_memory->clips_per_s, " clips/s"));
  if (g_stop) return 1;

  bool made_dir = false;
  std::string dir = o.dir;
  if (dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "vjepa-bench-e2e-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "vjepa-bench-e2e: mkdtemp: " << std::strerror(errno) << "\n";
      return 1;
    }
    dir = pattern;
    made_dir = true;
  } else {
    fs::create_directories(dir);
    dir = fs::canonical(dir).string();
  }
  absl::StatusOr<ServiceResult> service;
  {
    Cluster cluster{o.launcher, dir};
    service = RunService(o, dir, threads, cluster);
    cluster.Down();
  }
  if (made_dir && !o.keep_dir && service.ok()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  } else if (made_dir) {
    Progress(absl::StrCat("cluster directory kept: ", dir));
  }
  if (!service.ok()) {
    std::cerr << "vjepa-bench-e2e: service path: " << service.status() << "\n";
    return 1;
  }
  const double ratio = service->clips_per_s / in_memory->clips_per_s;
  nlohmann::ordered_json j;
  j["clips_per_s"] = service->clips_per_s;
  j["in_memory_clips_per_s"] = in_memory->clips_per_s;
  j["ratio"] = ratio;
  j["data_wait_fraction"] = service->data_wait_fraction;
  j["cores_needed"] = service->cores_needed;
  j["dataworkers"] = o.dataworkers;
  j["steps"] = static_cast<int64_t>(service->steps_in_window);
  j["warmup_steps"] = o.warmup;
  j["trainer_cpus"] = o.trainer_cpus;
  j["dataworker_cpus"] = o.dataworker_cpus;
  j["torch_threads"] = threads;
  j["batch"] = service->batch;
  j["wall_clips_per_s"] = service->wall_clips_per_s;
  j["job_clips_per_s"] = service->job_clips_per_s;
  j["job_data_wait_fraction"] = service->job_data_wait_fraction;
  j["config"] = "micro";
  if (o.json) std::cout << j.dump() << std::endl;
  std::fprintf(stderr,
               "e2e micro: %.3f clips/s through the service (%.3f by wall time), in-memory %.3f "
               "clips/s, ratio %.3f; data wait %.1f%% of step time; dataworker cores needed "
               "%.2f\n  (%g timed steps after %d warm-up, batch %lld, trainer CPUs %s with %d "
               "torch threads, %d dataworker(s) on CPUs %s; job %s %s)\n",
               service->clips_per_s, service->wall_clips_per_s, in_memory->clips_per_s, ratio,
               100 * service->data_wait_fraction, service->cores_needed, service->steps_in_window,
               o.warmup, static_cast<long long>(service->batch), o.trainer_cpus.c_str(), threads,
               o.dataworkers, o.dataworker_cpus.c_str(), service->job_id.c_str(),
               service->job_state.c_str());
  if (!o.json) {
    std::printf(
        "clips_per_s            %.3f\nin_memory_clips_per_s  %.3f\nratio                  "
        "%.3f\ndata_wait_fraction     %.4f\ncores_needed           %.3f\n",
        service->clips_per_s, in_memory->clips_per_s, ratio, service->data_wait_fraction,
        service->cores_needed);
  }
  return 0;
}

}  // namespace
}  // namespace vjepa::bench

int main(int argc, char** argv) { return vjepa::bench::Main(argc, argv); }
