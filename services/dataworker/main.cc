// vjepa-dataworker: decodes videos into batches of uint8 tokens and masks and streams them to
// trainers. See --help, and `vjepa-dataworker check --help` for the dataset pre-flight.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/rpc/server.h"
#include "common/rpc/token.h"
#include "common/spec/job_spec.h"
#include "glog/logging.h"
#include "opencv2/core/utility.hpp"
#include "services/dataworker/builder_producer.h"
#include "services/dataworker/check.h"
#include "services/dataworker/dataworker_server.h"
#include "services/dataworker/malloc_tuning.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "HOST:PORT (port 0 picks a free port, see --port_file) or unix:PATH to serve "
          "StreamBatches on");
ABSL_FLAG(std::string, port_file, "", "write the bound port to this file once serving");
ABSL_FLAG(std::string, advertise_address, "",
          "HOST:PORT trainers dial (default: the listen address, the host name for 0.0.0.0)");
ABSL_FLAG(std::string, auth_tokens, "",
          "token file of the callers, one 'TOKEN PRINCIPAL ROLE' per line; StreamBatches needs "
          "a worker or admin token (required)");
ABSL_FLAG(std::string, data_root, "",
          "comma-separated directories videos and manifests must lie under (required)");
ABSL_FLAG(int, threads, 2, "producer threads (one clip decodes on one thread)");
ABSL_FLAG(int, stream_buffer_batches, 2,
          "batches held per stream (being produced or waiting to be sent)");
ABSL_FLAG(int, max_leases, 0, "leases held at once; 0: 2 x --stream_buffer_batches x --threads");
ABSL_FLAG(absl::Duration, batch_timeout, absl::Seconds(120),
          "wall-clock bound for producing one batch; past it the lease fails");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "on SIGTERM, how long open streams may take to finish the batch they are writing "
          "before they are cancelled");
ABSL_FLAG(std::string, coordinator, "", "HOST:PORT of the coordinator (coordinator mode)");
ABSL_FLAG(std::string, token, "",
          "bearer token (a worker token) for the coordinator (default: $VJEPA_TOKEN)");
ABSL_FLAG(std::string, token_file, "", "file whose first line is the coordinator token");
ABSL_FLAG(std::string, name, "", "stable worker name for the coordinator (default: HOSTNAME:PORT)");
ABSL_FLAG(std::string, coordinator_tls_ca, "", "PEM CA of the coordinator; turns on TLS to it");
ABSL_FLAG(std::string, coordinator_tls_cert, "",
          "PEM client certificate for mutual TLS to the coordinator");
ABSL_FLAG(std::string, coordinator_tls_key, "", "PEM client key for mutual TLS");
ABSL_FLAG(std::string, job_spec, "",
          "standalone mode (no coordinator): serve this job spec (YAML) to trainers that ask");
ABSL_FLAG(std::string, job_id, "standalone", "standalone mode: the job id trainers ask for");
ABSL_FLAG(int, world_size, 1,
          "standalone mode: M trainers; a stream from g produces g, g+M, g+2M, ...");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT for the Prometheus /metrics endpoint; empty: none");
ABSL_FLAG(std::string, metrics_port_file, "", "write the bound /metrics port to this file");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain; with --tls_key turns on TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA of client certificates; set, it requires mutual TLS");

namespace {

using vjepa::dataworker::DataworkerConfig;

constexpr char kName[] = "vjepa-dataworker";

// The worker token from --token_file, --token or $VJEPA_TOKEN; false with a message.
bool CoordinatorToken(std::string* token) {
  absl::StatusOr<std::string> resolved = vjepa::rpc::ResolveToken(
      absl::GetFlag(FLAGS_token), absl::GetFlag(FLAGS_token_file), "VJEPA_TOKEN");
  if (!resolved.ok()) {
    std::cerr << kName << ": --coordinator needs a worker token: " << resolved.status().message()
              << "\n";
    return false;
  }
  *token = *std::move(resolved);
  return true;
}

int Serve() {
  // SIGINT/SIGTERM are taken by a sigwait below, not by handlers: block them in every thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string coordinator = absl::GetFlag(FLAGS_coordinator);
  const std::string job_spec = absl::GetFlag(FLAGS_job_spec);
  if (coordinator.empty() == job_spec.empty()) {
    std::cerr << kName << ": give either --coordinator (leases from the coordinator) or "
              << "--job_spec (standalone), exactly one\n";
    return 2;
  }
  DataworkerConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  config.auth_tokens = absl::GetFlag(FLAGS_auth_tokens);
  config.tls = {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                absl::GetFlag(FLAGS_tls_client_ca)};
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.stop_grace = absl::GetFlag(FLAGS_shutdown_grace);
  config.service.threads = absl::GetFlag(FLAGS_threads);
  config.service.stream_buffer_batches = absl::GetFlag(FLAGS_stream_buffer_batches);
  config.service.max_leases = absl::GetFlag(FLAGS_max_leases);
  if (!job_spec.empty()) {
    absl::StatusOr<std::string> yaml = vjepa::rpc::ReadTextFile(job_spec);
    if (!yaml.ok()) {
      std::cerr << kName << ": --job_spec " << yaml.status().message() << "\n";
      return 2;
    }
    absl::StatusOr<vjepa::spec::JobSpec> spec = vjepa::spec::ParseJobSpec(*yaml);
    if (!spec.ok()) {
      std::cerr << kName << ": --job_spec " << job_spec << ": " << spec.status().message() << "\n";
      return 2;
    }
    config.service.standalone = vjepa::dataworker::StandaloneJob{
        absl::GetFlag(FLAGS_job_id), *std::move(spec), absl::GetFlag(FLAGS_world_size)};
  } else {
    config.coordinator.address = coordinator;
    if (!CoordinatorToken(&config.coordinator.token)) return 2;
    config.coordinator.tls = {absl::GetFlag(FLAGS_coordinator_tls_cert),
                              absl::GetFlag(FLAGS_coordinator_tls_key),
                              absl::GetFlag(FLAGS_coordinator_tls_ca)};
    config.coordinator.name = absl::GetFlag(FLAGS_name);
    config.coordinator.advertise_address = absl::GetFlag(FLAGS_advertise_address);
    // The cores it produces with: its producer threads (the coordinator sizes jobs by them).
    config.coordinator.cpus = 0;
  }

  vjepa::dataworker::BuilderFactoryOptions factory_options;
  factory_options.data_roots =
      absl::StrSplit(absl::GetFlag(FLAGS_data_root), ',', absl::SkipEmpty());
  factory_options.batch_timeout = absl::GetFlag(FLAGS_batch_timeout);
  auto factory = vjepa::dataworker::BuilderProducerFactory::Create(factory_options);
  if (!factory.ok()) {
    std::cerr << kName << ": " << factory.status().message() << "\n";
    return 2;
  }
  auto server = vjepa::dataworker::DataworkerServer::Create(config, *factory);
  if (!server.ok()) {
    std::cerr << kName << ": " << server.status().message() << "\n";
    return 2;
  }
  if (auto s = (*server)->Start(); !s.ok()) {
    std::cerr << kName << ": " << s.message() << "\n";
    (*server)->Stop();
    return absl::IsInvalidArgument(s) ? 2 : 1;
  }
  const int port = (*server)->BoundPort();
  if (!absl::GetFlag(FLAGS_port_file).empty() &&
      !vjepa::rpc::WritePortFile(absl::GetFlag(FLAGS_port_file), port)) {
    std::cerr << kName << ": cannot write --port_file " << absl::GetFlag(FLAGS_port_file) << "\n";
    (*server)->Stop();
    return 1;
  }
  if (!absl::GetFlag(FLAGS_metrics_port_file).empty() &&
      !vjepa::rpc::WritePortFile(absl::GetFlag(FLAGS_metrics_port_file),
                                 (*server)->MetricsPort())) {
    std::cerr << kName << ": cannot write --metrics_port_file\n";
    (*server)->Stop();
    return 1;
  }
  LOG(INFO) << kName << " serving on "
            << (absl::StartsWith(config.listen, "unix:") ? config.listen
                                                         : absl::StrCat("port ", port))
            << (config.tls.enabled() ? " (TLS)" : "")
            << (job_spec.empty() ? absl::StrCat(", leasing from ", coordinator)
                                 : absl::StrCat(", standalone job ", absl::GetFlag(FLAGS_job_id),
                                                " of ", job_spec))
            << (config.metrics_listen.empty()
                    ? ""
                    : absl::StrCat(", metrics on port ", (*server)->MetricsPort()));
  int sig = 0;
  sigwait(&signals, &sig);
  LOG(INFO) << kName << ": signal " << sig << ", stopping";
  (*server)->Stop();
  LOG(INFO) << kName << ": stopped";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "check") {
    google::InitGoogleLogging(argv[0]);
    FLAGS_logtostderr = true;
    FLAGS_minloglevel = 2;  // errors only: the report is the output
    vjepa::dataworker::CheckOptions options;
    const std::vector<std::string> args(argv + 2, argv + argc);
    const int parsed = vjepa::dataworker::ParseCheckArgs(args, &options, std::cout, std::cerr);
    if (parsed >= 0) return parsed;
    return vjepa::dataworker::RunCheck(options, std::cout, std::cerr);
  }
  absl::SetProgramUsageMessage(
      "decodes videos into batches of uint8 tokens and masks and streams "
      "them to trainers.\n"
      "Usage: vjepa-dataworker --auth_tokens=FILE --data_root=DIR[,DIR] "
      "(--coordinator=HOST:PORT | --job_spec=FILE [--job_id=ID] [--world_size=M]) ...\n"
      "       vjepa-dataworker check --manifest=M --data_root=DIR [--json]   (see check --help)");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "services/dataworker/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::cerr << kName << ": unexpected argument \"" << positional[1]
              << "\" (the only subcommand is check; see --help)\n";
    return 2;
  }
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (!vjepa::dataworker::KeepLargeBuffersInHeap()) {
    LOG(WARNING) << "mallopt refused the heap settings: large messages will be slower";
  }
  // Parallelism comes from --threads producers, one clip each: OpenCV's own thread pool would
  // only oversubscribe the cores.
  cv::setNumThreads(1);
  return Serve();
}
