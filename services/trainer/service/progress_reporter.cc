#include "services/trainer/service/progress_reporter.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/client.h"
#include "common/status/grpc_status.h"
#include "glog/logging.h"

namespace vjepa::trainer {

ProgressReporter::ProgressReporter(ProgressReporterOptions options, TrainerMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  thread_ = std::thread([this] { SendLoop(); });
}

ProgressReporter::~ProgressReporter() { Stop(); }

void ProgressReporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool ProgressReporter::stale() const {
  absl::MutexLock lock(&mu_);
  return stale_;
}

void ProgressReporter::Add(const StepReport& step) {
  absl::MutexLock lock(&mu_);
  queued_.push_back(step);
}

bool ProgressReporter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (queued_.empty() && !sending_) || stop_ || stale_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  return queued_.empty() && !sending_ && !stale_;
}

v1::ReportProgressRequest ProgressReporter::BaseRequest() const {
  v1::ReportProgressRequest req;
  req.set_worker_id(options_.worker_id);
  req.set_job_id(options_.job_id);
  req.set_generation(options_.generation);
  req.set_rank(options_.rank);
  return req;
}

v1::ReportProgressRequest ProgressReporter::MakeReportLocked(size_t* count) const {
  v1::ReportProgressRequest req = BaseRequest();
  double wait = 0;
  double seconds = 0;
  double clips = 0;
  for (const StepReport& s : queued_) {
    if (s.global_index >= 0) req.add_delivered(s.global_index);
    wait += s.data_wait_seconds;
    seconds += s.step_seconds;
    clips += s.clips_per_second * s.step_seconds;
  }
  const StepReport& last = queued_.back();
  req.set_step(last.step);
  req.set_loss(last.loss);
  req.set_lr(last.lr);
  req.set_target_feature_std(last.target_feature_std);
  req.set_phase(last.phase);
  if (seconds > 0) {
    req.set_clips_per_second(clips / seconds);
    req.set_data_wait_fraction(std::min(1.0, wait / seconds));
  }
  req.set_step_seconds(seconds / static_cast<double>(queued_.size()));
  *count = queued_.size();
  return req;
}

void ProgressReporter::SendLoop() {
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    v1::ReportProgressRequest req;
    size_t count = 0;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queued_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      req = MakeReportLocked(&count);
      sending_ = true;
    }
    v1::ReportProgressResponse resp;
    auto ctx = rpc::MakeContext(options_.token, options_.rpc_timeout);
    const absl::Status s = FromGrpcStatus(options_.stub->ReportProgress(ctx.get(), req, &resp));
    bool retry = false;
    bool stale = false;
    {
      absl::MutexLock lock(&mu_);
      sending_ = false;
      if (s.ok()) {
        queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(count));
        metrics_->progress_reports.Add({{"result", "ok"}}).Increment();
        backoff = options_.initial_backoff;
      } else if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
        metrics_->progress_reports.Add({{"result", "unavailable"}}).Increment();
        retry = true;
      } else if (absl::IsFailedPrecondition(s)) {
        metrics_->progress_reports.Add({{"result", "stale"}}).Increment();
        stale_ = true;
        stale = true;
      } else {
        metrics_->progress_reports.Add({{"result", "error"}}).Increment();
        LOG(WARNING) << "ReportProgress of job " << options_.job_id << " step " << req.step()
                     << " refused: " << s << "; dropping it";
        queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(count));
      }
    }
    if (stale) {
      LOG(WARNING) << "ReportProgress: generation " << options_.generation << " of job "
                   << options_.job_id << " is stale (" << s.message() << ")";
      if (options_.on_stale) options_.on_stale();
      return;
    }
    if (retry) {
      LOG(WARNING) << "ReportProgress: " << s << "; retrying in " << backoff;
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

absl::Status ProgressReporter::ReportFailure(const std::string& message, absl::Duration budget) {
  v1::ReportProgressRequest req = BaseRequest();
  req.set_failure(message);
  return SendNow(req, budget);
}

absl::Status ProgressReporter::ReportResults(int64_t step,
                                             const std::vector<v1::ProbeResult>& results,
                                             absl::Duration budget) {
  v1::ReportProgressRequest req = BaseRequest();
  req.set_step(step);
  req.set_phase("eval");
  for (const v1::ProbeResult& r : results) *req.add_probe_results() = r;
  absl::Status s = SendNow(req, budget);
  const char* result = s.ok()                          ? "ok"
                       : absl::IsFailedPrecondition(s) ? "stale"
                       : absl::IsUnavailable(s)        ? "unavailable"
                                                       : "error";
  metrics_->progress_reports.Add({{"result", result}}).Increment();
  return s;
}

absl::Status ProgressReporter::SendNow(const v1::ReportProgressRequest& req,
                                       absl::Duration budget) {
  const absl::Time deadline = absl::Now() + budget;
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    v1::ReportProgressResponse resp;
    auto ctx = rpc::MakeContext(options_.token, options_.rpc_timeout);
    absl::Status s = FromGrpcStatus(options_.stub->ReportProgress(ctx.get(), req, &resp));
    if (!(absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) ||
        absl::Now() + backoff >= deadline) {
      return s;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace vjepa::trainer
