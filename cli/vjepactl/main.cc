// vjepactl: flags and verbs (CLI11) turned into calls of cli/vjepactl/commands.h.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/vjepactl/checkpoints.h"
#include "cli/vjepactl/commands.h"
#include "cli/vjepactl/health.h"
#include "common/rpc/client.h"
#include "common/rpc/server.h"

namespace vjepa::vjepactl {
namespace {

constexpr char kDefaultCoordinator[] = "127.0.0.1:50051";

constexpr char kFooter[] =
    R"(Global flags, before or after the verb (see 'vjepactl --help'): --coordinator, --token,
--token-file, --timeout, --tls-ca, --tls-cert, --tls-key.
Environment: VJEPA_COORDINATOR when --coordinator is not given (else 127.0.0.1:50051);
VJEPA_TOKEN when neither --token nor --token-file is given.
Exit codes: 0 success; 1 the coordinator refused the request, could not be reached, or a local
check failed (errors print as "vjepactl: <CODE>: <message>"); 2 bad flags or arguments.)";

constexpr char kWatchFooter[] =
    R"(Streams the job's events (its history first) until the coordinator ends the stream after
the event that makes the job terminal. Exits 0 on that clean end whatever the final state
(SUCCEEDED, FAILED or CANCELLED: read it from the last event), 1 on an error. A stream cut by
its --timeout deadline or by a transient error is reopened after the last event shown.)";

// Usage errors (ours and CLI11's) print like this and exit with kExitUsage.
int UsageError(const std::string& message) {
  std::cerr << "vjepactl: " << message << "\nRun 'vjepactl --help' or 'vjepactl VERB --help'.\n";
  return kExitUsage;
}

void AddOutputFlag(CLI::App* verb, std::string* output) {
  verb->add_option("-o,--output", *output, "Output format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
}

struct GlobalFlags {
  std::string coordinator;
  std::string token;
  std::string token_file;
  double timeout_seconds = 30;
  rpc::TlsFiles tls;
};

// Fills config.coordinator and config.token from the flags and the environment; returns an exit
// code when it cannot.
std::optional<int> ResolveConnection(const GlobalFlags& flags, CommandConfig& config) {
  config.coordinator = flags.coordinator;
  std::string source = "--coordinator";
  if (config.coordinator.empty()) {
    const char* env = std::getenv("VJEPA_COORDINATOR");
    config.coordinator = env != nullptr && *env != '\0' ? env : kDefaultCoordinator;
    source = "VJEPA_COORDINATOR";
  }
  if (absl::Status s = rpc::CheckHostPort(config.coordinator, source); !s.ok()) {
    return UsageError(std::string(s.message()));
  }

  if (!flags.token_file.empty()) {
    std::ifstream in(flags.token_file);
    if (!in) {
      return ReportError(
          absl::NotFoundError(absl::StrCat("--token-file ", flags.token_file, ": cannot open")),
          std::cerr);
    }
    std::string line;
    std::getline(in, line);
    config.token = std::string(absl::StripAsciiWhitespace(absl::string_view(line)));
  } else if (!flags.token.empty()) {
    config.token = flags.token;
  } else if (const char* env = std::getenv("VJEPA_TOKEN"); env != nullptr) {
    config.token = env;
  }

  const std::pair<const char*, const std::string*> files[] = {
      {"--tls-ca", &flags.tls.ca}, {"--tls-cert", &flags.tls.cert}, {"--tls-key", &flags.tls.key}};
  for (const auto& [flag, path] : files) {
    if (!path->empty() && !std::ifstream(*path)) {
      return ReportError(absl::NotFoundError(absl::StrCat(flag, " ", *path, ": cannot open")),
                         std::cerr);
    }
  }
  if (flags.tls.cert.empty() != flags.tls.key.empty()) {
    return UsageError("--tls-cert and --tls-key go together (a client certificate and its key)");
  }
  return std::nullopt;
}

// `vjepactl health`: needs no token, and waits 3 s unless --timeout says otherwise.
int Health(const GlobalFlags& flags, bool timeout_given, HealthOptions options,
           const std::string& http) {
  if (timeout_given) options.timeout = absl::Seconds(flags.timeout_seconds);
  if (!http.empty()) {
    if (absl::Status s = rpc::CheckHostPort(http, "--http"); !s.ok()) {
      return UsageError(std::string(s.message()));
    }
    options.address = http;
    return HttpHealth(options, std::cout, std::cerr);
  }
  std::string source = "--address";
  if (options.address.empty()) {
    options.address = flags.coordinator;
    source = "--coordinator";
  }
  if (options.address.empty()) {
    const char* env = std::getenv("VJEPA_COORDINATOR");
    options.address = env != nullptr && *env != '\0' ? env : kDefaultCoordinator;
    source = "VJEPA_COORDINATOR";
  }
  if (absl::Status s = rpc::CheckHostPort(options.address, source); !s.ok()) {
    return UsageError(std::string(s.message()));
  }
  if (flags.tls.cert.empty() != flags.tls.key.empty()) {
    return UsageError("--tls-cert and --tls-key go together (a client certificate and its key)");
  }
  rpc::ClientOptions client;
  client.address = options.address;
  client.tls = flags.tls;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = rpc::MakeChannel(client);
  if (!channel.ok()) return ReportError(channel.status(), std::cerr);
  return GrpcHealth(options, *channel, std::cout, std::cerr);
}

int Main(int argc, char** argv) {
  CLI::App app(
      "vjepactl: submit, list, describe, cancel, watch and delete V-JEPA training jobs, pull "
      "their checkpoints from a vjepa-train coordinator, and check a service's health.",
      "vjepactl");
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(kFooter);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return absl::StrCat("vjepactl: ", e.what(),
                        "\nRun 'vjepactl --help' or 'vjepactl VERB --help'.\n");
  });

  GlobalFlags flags;
  auto* token = app.add_option("--token", flags.token, "Bearer token (default: $VJEPA_TOKEN)");
  auto* token_file =
      app.add_option("--token-file", flags.token_file, "File whose first line is the bearer token");
  token->excludes(token_file);
  app.add_option("--coordinator", flags.coordinator,
                 absl::StrCat("Coordinator HOST:PORT (default: $VJEPA_COORDINATOR, else ",
                              kDefaultCoordinator, ")"));
  app.add_option("--timeout", flags.timeout_seconds,
                 "Deadline of each request in seconds; transient failures are retried within it")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            double seconds = 0;
            if (absl::SimpleAtod(text, &seconds) && seconds > 0 && seconds <= 1e7) return "";
            return "must be a positive number of seconds, got \"" + text + "\"";
          },
          "SECONDS"))
      ->capture_default_str();
  app.add_option("--tls-ca", flags.tls.ca,
                 "PEM CA of the coordinator's certificate (turns on TLS)");
  app.add_option("--tls-cert", flags.tls.cert, "PEM client certificate, for mutual TLS");
  app.add_option("--tls-key", flags.tls.key, "PEM key of the client certificate");

  std::string output = "table";

  SubmitOptions submit_options;
  CLI::App* submit = app.add_subcommand("submit", "Submit a job from a job spec (YAML)");
  submit->add_option("-f,--filename", submit_options.file, "Job spec file ('-' reads stdin)")
      ->required();
  submit->add_flag("--from-reference-config", submit_options.from_reference_config,
                   "The file is a pretrain config of the reference implementation; convert it");
  submit
      ->add_option("--set", submit_options.overrides,
                   "Override a spec key, e.g. --set optim.lr.peak=1e-3 (repeatable; the value is "
                   "YAML)")
      ->allow_extra_args(false);
  submit->add_option("--request-id", submit_options.request_id,
                     "Idempotence key (default: random); resubmitting with the same key returns "
                     "the job created the first time");
  AddOutputFlag(submit, &output);
  submit->footer(absl::StrCat(
      "The spec is validated here first (exit 1 with the spec's message when it is invalid), then "
      "sent in canonical form.\nAn unavailable coordinator is retried within --timeout with the "
      "same request id, so a retry never\ncreates a second job.\n\n",
      kFooter));

  CLI::App* get = app.add_subcommand("get", "List jobs or workers");
  get->require_subcommand(1);
  AddOutputFlag(get, &output);
  CLI::App* get_jobs =
      get->add_subcommand("jobs", "List your jobs (admins: all jobs), every state");
  get_jobs->alias("job");
  AddOutputFlag(get_jobs, &output);
  std::vector<std::string> state_names;
  JobsFilter jobs_filter;
  get_jobs
      ->add_option("--state", state_names,
                   "Only jobs in these states (repeatable or comma-separated), e.g. "
                   "--state PENDING,RUNNING")
      ->delimiter(',')
      ->check(CLI::IsMember(
          {"PENDING", "SCHEDULED", "RUNNING", "RESTARTING", "SUCCEEDED", "FAILED", "CANCELLED"},
          CLI::ignore_case));
  get_jobs->add_option("--owner", jobs_filter.owner,
                       "Only this owner's jobs (admins; users see only their own)");
  CLI::App* get_workers = get->add_subcommand("workers", "List the registered workers");
  get_workers->alias("worker");
  AddOutputFlag(get_workers, &output);

  std::string id;
  CLI::App* describe = app.add_subcommand("describe", "Show one object in detail");
  describe->require_subcommand(1);
  AddOutputFlag(describe, &output);
  CLI::App* describe_job = describe->add_subcommand("job", "Show a job and its canonical spec");
  describe_job->add_option("ID", id, "Job id")->required();
  AddOutputFlag(describe_job, &output);

  std::string reason;
  CLI::App* cancel = app.add_subcommand("cancel", "Cancel a job (idempotent)");
  cancel->add_option("ID", id, "Job id")->required();
  cancel->add_option("--reason", reason, "Why; recorded in the job's message");
  AddOutputFlag(cancel, &output);

  WatchOptions watch_options;
  CLI::App* watch = app.add_subcommand("watch", "Stream a job's events until it ends");
  watch->add_option("ID", watch_options.id, "Job id")->required();
  watch
      ->add_option("--after-seq", watch_options.after_seq,
                   "Show only events after this sequence number")
      ->check(CLI::NonNegativeNumber);
  AddOutputFlag(watch, &output);
  watch->footer(absl::StrCat(kWatchFooter, "\n\n", kFooter));

  CLI::App* checkpoints = app.add_subcommand("checkpoints", "List or pull a job's checkpoints");
  checkpoints->require_subcommand(1);
  std::string job_id;
  CLI::App* checkpoints_list = checkpoints->add_subcommand("list", "List a job's checkpoints");
  checkpoints_list->add_option("JOB", job_id, "Job id")->required();
  AddOutputFlag(checkpoints_list, &output);
  PullOptions pull_options;
  CLI::App* pull = checkpoints->add_subcommand("pull", "Download a checkpoint of a job");
  pull->add_option("JOB", pull_options.job_id, "Job id")->required();
  auto* pull_step = pull->add_option("--step", pull_options.step, "The checkpoint of this step")
                        ->check(CLI::NonNegativeNumber);
  bool latest = false;
  pull->add_flag("--latest", latest, "The newest checkpoint (the default)")->excludes(pull_step);
  pull->add_option("--only", pull_options.only,
                   "Keep only the tensors of this model, prefix stripped (e.g. target_encoder: "
                   "keys as in the reference encoder)")
      ->check(CLI::IsMember({"encoder", "predictor", "target_encoder"}));
  pull->add_option("--format", pull_options.format,
                   "safetensors, or pth (the reference's .pth.tar, through vjepa-export)")
      ->check(CLI::IsMember({"safetensors", "pth"}))
      ->capture_default_str();
  pull->add_option("-o,--out", pull_options.out,
                   "Output file; bytes go to FILE.partial first, and a rerun resumes it")
      ->required();
  pull->add_option("--output", output, "Result format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
  pull->footer(absl::StrCat(
      "The SHA-256 of the whole file is checked before FILE is written; on a mismatch the partial "
      "file is\ndeleted and the exit code is 1. A progress bar goes to stderr.\n\n",
      kFooter));

  HealthOptions health_options;
  std::string health_http;
  CLI::App* health = app.add_subcommand(
      "health", "Ask a service whether it is serving (no token needed); exit 0 only when it is");
  auto* health_address = health->add_option(
      "--address", health_options.address,
      "HOST:PORT of a gRPC server (coordinator or dataworker; default: the coordinator)");
  auto* health_service =
      health->add_option("--service", health_options.service,
                         "Ask about this service (e.g. vjepa.v1.JobService); default: the server");
  health
      ->add_option("--http", health_http,
                   "HOST:PORT of a /metrics endpoint (e.g. a trainer): GET /metrics, serving on "
                   "HTTP 200")
      ->excludes(health_address)
      ->excludes(health_service);
  health->footer(absl::StrCat(
      "gRPC: calls grpc.health.v1.Health/Check (TLS with --tls-ca; no token is sent) and prints "
      "the\nserving status (SERVING, NOT_SERVING, ...). --timeout bounds the check and defaults "
      "to 3 s here.\nExit codes: 0 SERVING; 1 not serving, unknown service, or unreachable.\n\n",
      kFooter));

  CLI::App* del = app.add_subcommand("delete", "Delete an object");
  del->require_subcommand(1);
  CLI::App* delete_job = del->add_subcommand(
      "job", "Delete a finished job (SUCCEEDED, FAILED, CANCELLED) with its checkpoints");
  delete_job->add_option("ID", id, "Job id")->required();
  AddOutputFlag(delete_job, &output);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (*health)
    return Health(flags, app.get_option("--timeout")->count() > 0, health_options, health_http);

  CommandConfig config;
  ParseOutputFormat(output, &config.output);
  config.timeout = absl::Seconds(flags.timeout_seconds);
  if (std::optional<int> code = ResolveConnection(flags, config)) return *code;

  rpc::ClientOptions client;
  client.address = config.coordinator;
  client.token = config.token;
  client.tls = flags.tls;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = rpc::MakeChannel(client);
  if (!channel.ok()) return ReportError(channel.status(), std::cerr);
  auto jobs = v1::JobService::NewStub(*channel);

  if (*submit) return Submit(config, submit_options, jobs.get(), std::cin, std::cout, std::cerr);
  if (*get_jobs) {
    for (const std::string& name : state_names) {
      v1::JobState state;
      if (!v1::JobState_Parse(absl::AsciiStrToUpper(name), &state)) {
        return UsageError("--state: unknown job state " + name);
      }
      jobs_filter.states.push_back(state);
    }
    return GetJobs(config, jobs_filter, jobs.get(), std::cout, std::cerr);
  }
  if (*get_workers) {
    auto workers = v1::WorkerService::NewStub(*channel);
    return GetWorkers(config, workers.get(), std::cout, std::cerr);
  }
  if (*describe_job) return DescribeJob(config, id, jobs.get(), std::cout, std::cerr);
  if (*cancel) return CancelJob(config, id, reason, jobs.get(), std::cout, std::cerr);
  if (*watch) return WatchJob(config, watch_options, jobs.get(), std::cout, std::cerr);
  if (*delete_job) return DeleteJob(config, id, jobs.get(), std::cout, std::cerr);
  auto checkpoint_stub = v1::CheckpointService::NewStub(*channel);
  if (*checkpoints_list) {
    return ListCheckpoints(config, job_id, checkpoint_stub.get(), std::cout, std::cerr);
  }
  if (*pull) {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) pull_options.export_binary = (self.parent_path() / "vjepa-export").string();
    return PullCheckpoint(config, pull_options, checkpoint_stub.get(), std::cout, std::cerr);
  }
  return UsageError("no verb given");
}

}  // namespace
}  // namespace vjepa::vjepactl

int main(int argc, char** argv) { return vjepa::vjepactl::Main(argc, argv); }
