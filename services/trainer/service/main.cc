// vjepa-trainer: trains a V-JEPA model on the batches of one or more dataworkers. Standalone mode
// (--job_spec): the job spec, the dataworkers and this rank's place in the group come from flags.
// Coordinator mode (--coordinator): it registers as a trainer and runs the assignments the
// coordinator hands out until SIGTERM. See --help and docs/trainer.md.
#include <fcntl.h>
#include <signal.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/core/reexec.h"
#include "common/metrics/metrics.h"
#include "common/rpc/server.h"
#include "common/rpc/token.h"
#include "common/spec/job_spec.h"
#include "glog/logging.h"
#include "services/dataworker/malloc_tuning.h"
#include "services/trainer/service/coordinator_session.h"
#include "services/trainer/service/trainer_metrics.h"
#include "services/trainer/service/training_run.h"
#include "services/trainer/vjepa/device.h"

ABSL_FLAG(std::string, coordinator, "",
          "HOST:PORT of the coordinator (coordinator mode; exclusive with --job_spec)");
ABSL_FLAG(std::string, name, "",
          "coordinator mode: stable worker name (default: this host's name)");
ABSL_FLAG(std::string, advertise_address, "",
          "coordinator mode: HOST[:PORT] of this trainer; rank 0 serves the c10d store on HOST "
          "(default: this host's name)");
ABSL_FLAG(std::string, work_dir, "",
          "coordinator mode: checkpoints are written (and pulled) under DIR/<job>/ (required)");
ABSL_FLAG(std::string, coordinator_tls_ca, "", "PEM CA of the coordinator; turns on TLS to it");
ABSL_FLAG(std::string, coordinator_tls_cert, "",
          "PEM client certificate for mutual TLS to the coordinator");
ABSL_FLAG(std::string, coordinator_tls_key, "", "PEM client key for mutual TLS");
ABSL_FLAG(std::string, dataworker_tls_ca, "",
          "PEM CA of the dataworkers; turns on TLS to them (they serve with --tls_cert/--tls_key)");
ABSL_FLAG(std::string, dataworker_tls_cert, "",
          "PEM client certificate toward the dataworkers, for mutual TLS");
ABSL_FLAG(std::string, dataworker_tls_key, "", "PEM client key toward the dataworkers");
ABSL_FLAG(std::string, batch_log, "",
          "append one JSON line per consumed batch to this file: job_id, generation, rank, step, "
          "g, epoch, batch_index, source");
ABSL_FLAG(std::string, job_spec, "",
          "standalone mode: the job spec (YAML), the same file the dataworkers were given");
ABSL_FLAG(std::string, job_id, "standalone", "the job id the dataworkers serve");
ABSL_FLAG(std::string, dataworkers, "",
          "comma-separated HOST:PORT or unix:PATH of the dataworkers (required); the trainer "
          "reads one and fails over to the next");
ABSL_FLAG(std::string, token, "",
          "worker token for the coordinator and the dataworkers (default: $VJEPA_TOKEN)");
ABSL_FLAG(std::string, token_file, "", "file whose first line is the worker token");
ABSL_FLAG(int, rank, 0, "this trainer's rank r in [0, world_size)");
ABSL_FLAG(int, world_size, 1, "number of trainers M; rank r trains on batches g = s*M + r");
ABSL_FLAG(std::string, c10d_store, "",
          "HOST:PORT of the c10d TCPStore, served by rank 0 (needed when world_size > 1)");
ABSL_FLAG(absl::Duration, c10d_timeout, absl::Seconds(60),
          "bound for the c10d rendezvous and every collective");
ABSL_FLAG(std::string, checkpoint_dir, "",
          "rank 0 writes step-<S>.safetensors here every checkpoint.every_steps steps and at the "
          "end; empty: no checkpoints");
ABSL_FLAG(bool, resume, false,
          "continue from the newest checkpoint in --checkpoint_dir (step 0 when there is none)");
ABSL_FLAG(int64_t, steps, 0, "train until this many steps are done; 0: the spec's optim.steps");
ABSL_FLAG(int, log_every, 1, "print a progress line every this many steps");
ABSL_FLAG(int, torch_threads, 0,
          "LibTorch intra-op threads; 0: the spec's resources.torch_threads");
ABSL_FLAG(absl::Duration, data_deadline, absl::Seconds(60),
          "give up when no dataworker brought a batch for this long");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT for the Prometheus /metrics endpoint; empty: none");
ABSL_FLAG(std::string, metrics_port_file, "", "write the bound /metrics port to this file");
ABSL_FLAG(bool, stage_ahead, false,
          "fetch and stage each batch one step ahead (as a GPU trainer always does, there through "
          "pinned memory on a copy stream); on the CPU the same order of work, for checks");
ABSL_FLAG(std::string, device, "cpu",
          "cpu, cuda or cuda:N: where this trainer trains. In coordinator mode it is told to the "
          "coordinator, which gives jobs with resources.device: cuda to GPU trainers only and "
          "the rest to CPU trainers; standalone, a cuda job needs a GPU device here");

namespace {

constexpr char kName[] = "vjepa-trainer";

// --device, checked against this LibTorch and the visible GPUs; false with a message.
bool DeviceFlag(std::string* device) {
  *device = absl::GetFlag(FLAGS_device);
  vjepa::core::StatusOr<torch::Device> parsed = vjepa::jepa::ParseDevice(*device);
  if (!parsed.ok()) {
    std::cerr << kName << ": --device: " << parsed.status().message() << "\n";
    return false;
  }
  return true;
}

// The worker token from --token_file, --token or $VJEPA_TOKEN; false with a message.
bool WorkerToken(std::string* token) {
  absl::StatusOr<std::string> resolved = vjepa::rpc::ResolveToken(
      absl::GetFlag(FLAGS_token), absl::GetFlag(FLAGS_token_file), "VJEPA_TOKEN");
  if (!resolved.ok()) {
    std::cerr << kName << ": a worker token is needed: " << resolved.status().message() << "\n";
    return false;
  }
  *token = *std::move(resolved);
  return true;
}

// SIGINT and SIGTERM: a handler (on whichever thread the signal lands; some threads are started
// before main) writes the signal number to a pipe that the signal thread reads.
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

bool InstallSignalHandlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return false;
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(SIGINT, &action, nullptr) == 0 && sigaction(SIGTERM, &action, nullptr) == 0;
}

// The signal thread: calls `on_signal` with the first SIGINT/SIGTERM; Finish() (at the end of
// the work) wakes it through the pipe and joins it.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal)
      : thread_([this, on_signal = std::move(on_signal)] {
          unsigned char byte = 0;
          while (read(g_signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
          }
          if (!done_) on_signal(byte);
        }) {}
  ~SignalWatcher() { Finish(); }

  void Finish() {
    if (!thread_.joinable()) return;
    done_ = true;
    const unsigned char wake = 0;
    if (write(g_signal_pipe[1], &wake, 1) != 1) LOG(ERROR) << "cannot wake the signal thread";
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The /metrics endpoint when --metrics_listen is set; false with a message.
bool StartMetrics(const std::shared_ptr<vjepa::metrics::Registry>& registry,
                  std::unique_ptr<vjepa::metrics::Exposer>* exposer) {
  if (absl::GetFlag(FLAGS_metrics_listen).empty()) return true;
  auto started = vjepa::metrics::Exposer::Start(absl::GetFlag(FLAGS_metrics_listen), registry);
  if (!started.ok()) {
    std::cerr << kName << ": --metrics_listen: " << started.status().message() << "\n";
    return false;
  }
  *exposer = std::move(started).value();
  if (!absl::GetFlag(FLAGS_metrics_port_file).empty() &&
      !vjepa::rpc::WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), (*exposer)->BoundPort())) {
    std::cerr << kName << ": cannot write --metrics_port_file\n";
    return false;
  }
  return true;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

vjepa::rpc::TlsFiles DataworkerTls() {
  vjepa::rpc::TlsFiles tls;
  tls.ca = absl::GetFlag(FLAGS_dataworker_tls_ca);
  tls.cert = absl::GetFlag(FLAGS_dataworker_tls_cert);
  tls.key = absl::GetFlag(FLAGS_dataworker_tls_key);
  return tls;
}

// Coordinator mode: runs assignments until SIGINT/SIGTERM, which aborts the current run (no
// checkpoint) and exits 0.
int Serve() {
  vjepa::trainer::CoordinatorSessionOptions o;
  o.address = absl::GetFlag(FLAGS_coordinator);
  if (!WorkerToken(&o.token)) return 2;
  o.tls.ca = absl::GetFlag(FLAGS_coordinator_tls_ca);
  o.tls.cert = absl::GetFlag(FLAGS_coordinator_tls_cert);
  o.tls.key = absl::GetFlag(FLAGS_coordinator_tls_key);
  o.data_tls = DataworkerTls();
  o.name = absl::GetFlag(FLAGS_name);
  if (o.name.empty()) o.name = HostName();
  o.advertise_address = absl::GetFlag(FLAGS_advertise_address);
  if (o.advertise_address.empty()) o.advertise_address = HostName();
  o.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (o.work_dir.empty()) {
    std::cerr << kName << ": --coordinator needs --work_dir\n";
    return 2;
  }
  o.cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (!DeviceFlag(&o.device)) return 2;
  o.c10d_timeout = absl::GetFlag(FLAGS_c10d_timeout);
  o.batch_log = absl::GetFlag(FLAGS_batch_log);
  o.log_every = absl::GetFlag(FLAGS_log_every);
  o.torch_threads = absl::GetFlag(FLAGS_torch_threads);
  o.data_deadline = absl::GetFlag(FLAGS_data_deadline);
  if (o.torch_threads > 0) torch::set_num_threads(o.torch_threads);

  auto registry = std::make_shared<vjepa::metrics::Registry>();
  std::unique_ptr<vjepa::metrics::Exposer> exposer;
  if (!StartMetrics(registry, &exposer)) return 2;
  vjepa::trainer::TrainerMetrics metrics(*registry);
  vjepa::trainer::CoordinatorSession session(o, &metrics);
  if (!InstallSignalHandlers()) {
    std::cerr << kName << ": cannot install the SIGTERM handler\n";
    return 1;
  }
  SignalWatcher signals([&](int sig) {
    LOG(INFO) << kName << ": signal " << sig << ", stopping";
    session.Stop();
  });
  LOG(INFO) << kName << " " << o.name << " serving the coordinator at " << o.address
            << (exposer ? absl::StrCat(", metrics on port ", exposer->BoundPort()) : "");
  absl::Status s = session.Run();
  signals.Finish();
  if (!s.ok()) {
    std::cerr << kName << ": " << s.message() << "\n";
    return 1;
  }
  LOG(INFO) << kName << ": stopped";
  return 0;
}

int Train() {
  vjepa::trainer::TrainingRunOptions o;
  o.data_tls = DataworkerTls();
  const std::string spec_path = absl::GetFlag(FLAGS_job_spec);
  if (spec_path.empty()) {
    std::cerr << kName << ": --job_spec or --coordinator is required\n";
    return 2;
  }
  absl::StatusOr<std::string> spec_text = vjepa::rpc::ReadTextFile(spec_path);
  if (!spec_text.ok()) {
    std::cerr << kName << ": --job_spec " << spec_text.status().message() << "\n";
    return 2;
  }
  o.spec_text = *std::move(spec_text);
  absl::StatusOr<vjepa::spec::JobSpec> spec = vjepa::spec::ParseJobSpec(o.spec_text);
  if (!spec.ok()) {
    std::cerr << kName << ": --job_spec " << spec_path << ": " << spec.status().message() << "\n";
    return 2;
  }
  o.spec = *std::move(spec);
  o.job_id = absl::GetFlag(FLAGS_job_id);
  o.dataworkers = absl::StrSplit(absl::GetFlag(FLAGS_dataworkers), ',', absl::SkipEmpty());
  if (o.dataworkers.empty()) {
    std::cerr << kName << ": --dataworkers is required\n";
    return 2;
  }
  if (!WorkerToken(&o.token)) return 2;
  if (!DeviceFlag(&o.device)) return 2;
  o.stage_ahead = absl::GetFlag(FLAGS_stage_ahead);
  o.rank = absl::GetFlag(FLAGS_rank);
  o.world_size = absl::GetFlag(FLAGS_world_size);
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    std::cerr << kName << ": --rank " << o.rank << " must lie in [0, --world_size " << o.world_size
              << ")\n";
    return 2;
  }
  o.c10d_store = absl::GetFlag(FLAGS_c10d_store);
  if (o.world_size > 1 && o.c10d_store.empty()) {
    std::cerr << kName << ": --world_size " << o.world_size << " needs --c10d_store\n";
    return 2;
  }
  o.c10d_timeout = absl::GetFlag(FLAGS_c10d_timeout);
  o.checkpoint_dir = absl::GetFlag(FLAGS_checkpoint_dir);
  o.resume = absl::GetFlag(FLAGS_resume);
  if (o.resume && o.checkpoint_dir.empty()) {
    std::cerr << kName << ": --resume needs --checkpoint_dir\n";
    return 2;
  }
  o.steps = absl::GetFlag(FLAGS_steps);
  if (o.steps < 0) {
    std::cerr << kName << ": --steps must be >= 0, got " << o.steps << "\n";
    return 2;
  }
  o.log_every = absl::GetFlag(FLAGS_log_every);
  o.reconnect_deadline = absl::GetFlag(FLAGS_data_deadline);
  o.batch_log = absl::GetFlag(FLAGS_batch_log);
  int threads = absl::GetFlag(FLAGS_torch_threads);
  if (threads <= 0) threads = static_cast<int>(o.spec.resources.torch_threads);
  if (threads > 0) torch::set_num_threads(threads);

  auto registry = std::make_shared<vjepa::metrics::Registry>();
  std::unique_ptr<vjepa::metrics::Exposer> exposer;
  if (!StartMetrics(registry, &exposer)) return 2;

  vjepa::trainer::TrainingRun run(o, registry);
  if (!InstallSignalHandlers()) {
    std::cerr << kName << ": cannot install the SIGTERM handler\n";
    return 1;
  }
  // The first SIGINT/SIGTERM stops the run after the current step.
  SignalWatcher signals([&](int sig) {
    LOG(INFO) << kName << ": signal " << sig << ", stopping after the current step";
    run.RequestStop();
  });
  LOG(INFO) << kName << " rank " << o.rank << "/" << o.world_size << " of job " << o.job_id << " ("
            << spec_path << "), reading from " << absl::GetFlag(FLAGS_dataworkers)
            << (exposer ? absl::StrCat(", metrics on port ", exposer->BoundPort()) : "");
  absl::StatusOr<vjepa::trainer::TrainingResult> result = run.Run();
  signals.Finish();
  if (!result.ok()) {
    std::cerr << kName << ": " << result.status().message() << "\n";
    return 1;
  }
  LOG(INFO) << kName << ": " << (result->stopped ? "stopped" : "done") << " at step "
            << result->end_step << " (started at " << result->start_step << ")"
            << (result->last_checkpoint.empty()
                    ? ""
                    : absl::StrCat(", checkpoint ", result->last_checkpoint));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  vjepa::core::ReexecWithPassiveOmp(argv);
  absl::SetProgramUsageMessage(
      "trains a V-JEPA model on batches streamed by dataworkers.\n"
      "Usage: vjepa-trainer --coordinator=HOST:PORT --token_file=FILE --name=NAME "
      "--advertise_address=HOST --work_dir=DIR [--batch_log=FILE]\n"
      "   or: vjepa-trainer --job_spec=FILE --dataworkers=HOST:PORT[,...] --token_file=FILE "
      "[--job_id=ID] [--rank=R --world_size=M --c10d_store=HOST:PORT] "
      "[--checkpoint_dir=DIR [--resume]] [--steps=N]");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "services/trainer/service/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::cerr << kName << ": unexpected argument \"" << positional[1] << "\" (see --help)\n";
    return 2;
  }
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (!vjepa::dataworker::KeepLargeBuffersInHeap()) {
    LOG(WARNING) << "mallopt refused the heap settings: large messages will be slower";
  }
  const bool coordinator = !absl::GetFlag(FLAGS_coordinator).empty();
  if (coordinator && !absl::GetFlag(FLAGS_job_spec).empty()) {
    std::cerr << kName << ": give either --coordinator or --job_spec, not both\n";
    return 2;
  }
  return coordinator ? Serve() : Train();
}
