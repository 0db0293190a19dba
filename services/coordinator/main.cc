// vjepa-coordinator: schedules jobs and owns their durable state. See --help.
#include <signal.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/server.h"
#include "glog/logging.h"
#include "services/coordinator/coordinator_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "HOST:PORT to serve the API on; port 0 picks a free port (see --port_file)");
ABSL_FLAG(std::string, port_file, "", "write the bound API port to this file once serving");
ABSL_FLAG(std::string, data_dir, "", "directory for the SQLite store and checkpoints (required)");
ABSL_FLAG(std::string, auth_tokens, "",
          "token file, one 'TOKEN PRINCIPAL ROLE' per line, roles admin|user|worker (required)");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT for the Prometheus /metrics endpoint; empty: none");
ABSL_FLAG(std::string, metrics_port_file, "", "write the bound /metrics port to this file");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain; with --tls_key turns on TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA of client certificates; set, it requires mutual TLS");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(2),
          "how often workers are told to heartbeat");
ABSL_FLAG(absl::Duration, worker_lost_after, absl::Seconds(10),
          "silence after which a worker is declared LOST (>= 2 heartbeat intervals)");
ABSL_FLAG(int64_t, max_checkpoint_bytes, int64_t{16} << 30,
          "largest checkpoint an UploadCheckpoint may send, in bytes");
ABSL_FLAG(absl::Duration, lease_duration, absl::Seconds(120),
          "a batch lease not produced and streamed within this returns to PENDING");
ABSL_FLAG(int, max_restarts, 3,
          "restarts after a lost or failed trainer before a job FAILS (>= 0)");
ABSL_FLAG(absl::Duration, schedule_interval, absl::Milliseconds(200),
          "how often the scheduler places trainers and dataworkers and expires leases");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vjepa-coordinator: the vjepa-train control plane (jobs, workers, checkpoints).\n"
      "Usage: vjepa-coordinator --data_dir=DIR --auth_tokens=FILE [--listen=HOST:PORT] ...");
  absl::FlagsUsageConfig usage;
  // --help lists the flags of this file (Abseil's default matches files named like the binary).
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "services/coordinator/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  // SIGINT/SIGTERM are taken by a sigwait below, not by handlers: block them in every thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  vjepa::coordinator::CoordinatorConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  config.data_dir = absl::GetFlag(FLAGS_data_dir);
  config.auth_tokens = absl::GetFlag(FLAGS_auth_tokens);
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.tls = {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                absl::GetFlag(FLAGS_tls_client_ca)};
  config.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  config.lost_after = absl::GetFlag(FLAGS_worker_lost_after);
  config.max_checkpoint_bytes = absl::GetFlag(FLAGS_max_checkpoint_bytes);
  config.lease_duration = absl::GetFlag(FLAGS_lease_duration);
  config.max_restarts = absl::GetFlag(FLAGS_max_restarts);
  config.schedule_interval = absl::GetFlag(FLAGS_schedule_interval);

  auto server = vjepa::coordinator::CoordinatorServer::Create(config);
  if (!server.ok()) {
    std::cerr << "vjepa-coordinator: " << server.status().message() << "\n";
    return 2;
  }
  if (auto s = (*server)->Start(); !s.ok()) {
    std::cerr << "vjepa-coordinator: " << s.message() << "\n";
    return 1;
  }
  const int port = (*server)->BoundPort();
  if (!absl::GetFlag(FLAGS_port_file).empty() &&
      !vjepa::rpc::WritePortFile(absl::GetFlag(FLAGS_port_file), port)) {
    std::cerr << "vjepa-coordinator: cannot write --port_file " << absl::GetFlag(FLAGS_port_file)
              << "\n";
    return 1;
  }
  if (!absl::GetFlag(FLAGS_metrics_port_file).empty() &&
      !vjepa::rpc::WritePortFile(absl::GetFlag(FLAGS_metrics_port_file),
                                 (*server)->MetricsPort())) {
    std::cerr << "vjepa-coordinator: cannot write --metrics_port_file\n";
    return 1;
  }
  LOG(INFO) << "vjepa-coordinator serving on port " << port << " (data dir " << config.data_dir
            << (config.tls.enabled() ? ", TLS" : "")
            << (config.metrics_listen.empty()
                    ? ""
                    : absl::StrCat(", metrics on port ", (*server)->MetricsPort()))
            << ")";
  int sig = 0;
  sigwait(&signals, &sig);
  LOG(INFO) << "vjepa-coordinator: signal " << sig << ", stopping";
  (*server)->Stop();
  return 0;
}
