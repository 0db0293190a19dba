#include "cli/vjepactl/commands.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <istream>
#include <optional>
#include <ostream>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rpc/client.h"
#include "common/spec/job_spec.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"

namespace vjepa::vjepactl {
namespace {

// Connection problems name the coordinator, so that a wrong address or a coordinator that is
// down reads as such.
absl::Status Annotate(absl::Status s, const CommandConfig& config) {
  if (absl::IsUnavailable(s)) {
    return absl::UnavailableError(
        absl::StrCat("coordinator ", config.coordinator, ": ", s.message()));
  }
  if (absl::IsDeadlineExceeded(s)) {
    return absl::DeadlineExceededError(
        absl::StrCat("coordinator ", config.coordinator, ": no answer within ",
                     absl::FormatDuration(config.timeout), ": ", s.message()));
  }
  return s;
}

// One unary call with a deadline of config.timeout; transient failures are retried within it.
// Every call that vjepactl makes is idempotent (SubmitJob through its client request id).
absl::Status Call(const CommandConfig& config, const std::string& method,
                  const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  const absl::Time deadline = config.retry.now() + config.timeout;
  absl::Status s = RetryWithDeadline(
      [&] {
        const absl::Duration left = std::max(deadline - config.retry.now(), absl::Milliseconds(1));
        auto context = rpc::MakeContext(config.token, left);
        return FromGrpcStatus(rpc(context.get()));
      },
      method, deadline, config.retry);
  return Annotate(std::move(s), config);
}

void Print(const Json& value, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kYaml) {
    out << JsonToYaml(value);
  } else {
    out << value.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  }
}

absl::Status OpenError(const std::string& path, int error) {
  const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES) return absl::PermissionDeniedError(message);
  return absl::InvalidArgumentError(message);
}

// The spec text from a file or stdin ("-"), at most spec::kMaxSpecBytes.
absl::StatusOr<std::string> ReadSpecText(const std::string& file, std::istream& stdin_stream) {
  std::ifstream file_stream;
  std::istream* in = &stdin_stream;
  const std::string name = file == "-" ? "<stdin>" : file;
  if (file != "-") {
    errno = 0;
    file_stream.open(file, std::ios::binary);
    if (!file_stream) return OpenError(file, errno == 0 ? ENOENT : errno);
    in = &file_stream;
  }
  std::string text(spec::kMaxSpecBytes + 1, '\0');
  in->read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in->bad()) return absl::InvalidArgumentError(absl::StrCat(name, ": cannot read"));
  text.resize(static_cast<size_t>(in->gcount()));
  if (text.size() > spec::kMaxSpecBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(name, ": larger than the limit of ", spec::kMaxSpecBytes, " bytes"));
  }
  return text;
}

// Local checks first (the spec library's exact messages), then the call.
absl::Status DoSubmit(const CommandConfig& config, const SubmitOptions& options,
                      v1::JobService::StubInterface* jobs, std::istream& in, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string text, ReadSpecText(options.file, in));
  if (options.from_reference_config) {
    ASSIGN_OR_RETURN(text, spec::ImportReferenceConfig(text));
  }
  ASSIGN_OR_RETURN(spec::JobSpec parsed, spec::ParseJobSpec(text, options.overrides));

  v1::SubmitJobRequest request;
  request.set_spec_yaml(spec::ToYaml(parsed));
  request.set_client_request_id(options.request_id.empty() ? NewRequestId() : options.request_id);
  v1::SubmitJobResponse response;
  RETURN_IF_ERROR(Call(config, "SubmitJob", [&](grpc::ClientContext* context) {
    response.Clear();
    return jobs->SubmitJob(context, request, &response);
  }));

  const v1::Job& job = response.job();
  if (config.output == OutputFormat::kTable) {
    out << "job/" << job.id() << " submitted" << (response.deduplicated() ? " (deduplicated)" : "")
        << "\n";
  } else {
    Json value = JobToJson(job);
    value["deduplicated"] = response.deduplicated();
    Print(value, config.output, out);
  }
  return absl::OkStatus();
}

absl::Status DoGetJobs(const CommandConfig& config, const JobsFilter& filter,
                       v1::JobService::StubInterface* jobs, std::ostream& out) {
  std::vector<v1::Job> all;
  std::string page_token;
  do {
    v1::ListJobsRequest request;
    for (v1::JobState state : filter.states) request.add_states(state);
    request.set_owner(filter.owner);
    request.set_page_token(page_token);
    v1::ListJobsResponse response;
    RETURN_IF_ERROR(Call(config, "ListJobs", [&](grpc::ClientContext* context) {
      response.Clear();
      return jobs->ListJobs(context, request, &response);
    }));
    all.insert(all.end(), response.jobs().begin(), response.jobs().end());
    if (!page_token.empty() && response.next_page_token() == page_token) {
      return absl::InternalError(
          absl::StrCat("ListJobs: the coordinator returned page token \"", page_token, "\" twice"));
    }
    page_token = response.next_page_token();
  } while (!page_token.empty());

  if (config.output == OutputFormat::kTable) {
    out << JobsTable(all, config.now());
    return absl::OkStatus();
  }
  Json array = Json::array();
  for (const v1::Job& job : all) array.push_back(JobToJson(job));
  Print(array, config.output, out);
  return absl::OkStatus();
}

absl::Status DoGetWorkers(const CommandConfig& config, v1::WorkerService::StubInterface* workers,
                          std::ostream& out) {
  v1::ListWorkersRequest request;
  v1::ListWorkersResponse response;
  RETURN_IF_ERROR(Call(config, "ListWorkers", [&](grpc::ClientContext* context) {
    response.Clear();
    return workers->ListWorkers(context, request, &response);
  }));
  const std::vector<v1::Worker> all(response.workers().begin(), response.workers().end());
  if (config.output == OutputFormat::kTable) {
    out << WorkersTable(all, config.now());
    return absl::OkStatus();
  }
  Json array = Json::array();
  for (const v1::Worker& worker : all) array.push_back(WorkerToJson(worker));
  Print(array, config.output, out);
  return absl::OkStatus();
}

absl::Status DoDescribeJob(const CommandConfig& config, const std::string& id,
                           v1::JobService::StubInterface* jobs, std::ostream& out) {
  v1::GetJobRequest request;
  request.set_id(id);
  v1::GetJobResponse response;
  RETURN_IF_ERROR(Call(config, "GetJob", [&](grpc::ClientContext* context) {
    response.Clear();
    return jobs->GetJob(context, request, &response);
  }));
  const v1::Job& job = response.job();
  if (config.output == OutputFormat::kTable) {
    out << DescribeJobText(job, config.now());
    return absl::OkStatus();
  }
  Json value = JobToJson(job);
  absl::StatusOr<Json> spec = YamlToJson(job.spec_yaml());
  // The coordinator stores canonical YAML; should it ever not parse, show the text itself.
  value["spec"] = spec.ok() ? *std::move(spec) : Json(job.spec_yaml());
  Print(value, config.output, out);
  return absl::OkStatus();
}

absl::Status DoCancelJob(const CommandConfig& config, const std::string& id,
                         const std::string& reason, v1::JobService::StubInterface* jobs,
                         std::ostream& out) {
  v1::CancelJobRequest request;
  request.set_id(id);
  request.set_reason(reason);
  v1::CancelJobResponse response;
  RETURN_IF_ERROR(Call(config, "CancelJob", [&](grpc::ClientContext* context) {
    response.Clear();
    return jobs->CancelJob(context, request, &response);
  }));
  const v1::Job& job = response.job();
  if (config.output == OutputFormat::kTable) {
    if (job.state() == v1::CANCELLED) {
      out << "job/" << job.id() << " cancelled\n";
    } else {
      out << "job/" << job.id() << " cancel requested (state " << JobStateName(job.state())
          << ")\n";
    }
    return absl::OkStatus();
  }
  Print(JobToJson(job), config.output, out);
  return absl::OkStatus();
}

void PrintEvent(const v1::JobEvent& event, OutputFormat format, std::ostream& out) {
  switch (format) {
    case OutputFormat::kTable:
      out << WatchEventLine(event) << "\n";
      break;
    case OutputFormat::kJson:
      out << JobEventToJson(event).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
      break;
    case OutputFormat::kYaml:
      out << "---\n" << JsonToYaml(JobEventToJson(event));
      break;
  }
  out.flush();
}

absl::Status DoWatchJob(const CommandConfig& config, const WatchOptions& options,
                        v1::JobService::StubInterface* jobs, std::ostream& out) {
  if (config.output == OutputFormat::kTable) out << WatchHeaderLine() << "\n" << std::flush;
  int64_t after_seq = options.after_seq;
  absl::Duration backoff = config.retry.initial_backoff;
  // Set while calls fail: transient failures are retried until config.timeout after the first.
  std::optional<absl::Time> failing_since;
  for (;;) {
    v1::WatchJobRequest request;
    request.set_id(options.id);
    request.set_after_seq(after_seq);
    auto context = rpc::MakeContext(config.token, config.timeout);
    std::unique_ptr<grpc::ClientReaderInterface<v1::JobEvent>> reader =
        jobs->WatchJob(context.get(), request);
    v1::JobEvent event;
    bool progressed = false;
    while (reader->Read(&event)) {
      if (event.seq() <= after_seq) continue;  // already shown before a reconnect
      PrintEvent(event, config.output, out);
      after_seq = event.seq();
      progressed = true;
    }
    absl::Status s = FromGrpcStatus(reader->Finish());
    if (s.ok()) return s;
    if (absl::IsDeadlineExceeded(s)) {
      // The stream lasted its deadline with the job still running (or the coordinator hung):
      // open the next one only if the coordinator answers.
      v1::GetJobRequest probe;
      probe.set_id(options.id);
      v1::GetJobResponse job;
      auto probe_context = rpc::MakeContext(config.token, config.timeout);
      s = FromGrpcStatus(jobs->GetJob(probe_context.get(), probe, &job));
      if (s.ok()) progressed = true;
    }
    if (progressed) {
      failing_since.reset();
      backoff = config.retry.initial_backoff;
      if (s.ok()) continue;
    }
    if (!IsRetriable(s)) return Annotate(std::move(s), config);
    const absl::Time now = config.retry.now();
    if (!failing_since) failing_since = now;
    if (now + backoff >= *failing_since + config.timeout) {
      return Annotate(
          absl::Status(s.code(), absl::StrCat("WatchJob: gave up after ",
                                              absl::FormatDuration(now - *failing_since),
                                              " of failures: ", s.message())),
          config);
    }
    config.retry.sleep(backoff);
    backoff = std::min(config.retry.max_backoff, backoff * config.retry.multiplier);
  }
}

}  // namespace

absl::Status UnaryCall(const CommandConfig& config, const std::string& method,
                       const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  return Call(config, method, rpc);
}

absl::Status AnnotateConnection(absl::Status s, const CommandConfig& config) {
  return Annotate(std::move(s), config);
}

void PrintStructured(const Json& value, OutputFormat format, std::ostream& out) {
  Print(value, format, out);
}

std::string NewRequestId() {
  std::random_device device;
  std::string id;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&id, absl::StrFormat("%08x", device()));
  return id;
}

int ReportError(const absl::Status& status, std::ostream& err) {
  if (status.ok()) return kExitOk;
  err << "vjepactl: " << StatusCodeName(status.code()) << ": " << status.message() << "\n";
  return kExitError;
}

int Submit(const CommandConfig& config, const SubmitOptions& options,
           v1::JobService::StubInterface* jobs, std::istream& in, std::ostream& out,
           std::ostream& err) {
  return ReportError(DoSubmit(config, options, jobs, in, out), err);
}

int GetJobs(const CommandConfig& config, v1::JobService::StubInterface* jobs, std::ostream& out,
            std::ostream& err) {
  return GetJobs(config, JobsFilter(), jobs, out, err);
}

int GetJobs(const CommandConfig& config, const JobsFilter& filter,
            v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err) {
  return ReportError(DoGetJobs(config, filter, jobs, out), err);
}

int GetWorkers(const CommandConfig& config, v1::WorkerService::StubInterface* workers,
               std::ostream& out, std::ostream& err) {
  return ReportError(DoGetWorkers(config, workers, out), err);
}

int DescribeJob(const CommandConfig& config, const std::string& id,
                v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err) {
  return ReportError(DoDescribeJob(config, id, jobs, out), err);
}

int CancelJob(const CommandConfig& config, const std::string& id, const std::string& reason,
              v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err) {
  return ReportError(DoCancelJob(config, id, reason, jobs, out), err);
}

int WatchJob(const CommandConfig& config, const WatchOptions& options,
             v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err) {
  return ReportError(DoWatchJob(config, options, jobs, out), err);
}

}  // namespace vjepa::vjepactl
