#include "services/coordinator/ledger.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vjepa::coordinator {

absl::StatusOr<JobLedger> JobLedger::Create(const LedgerShape& shape) {
  if (shape.world_size < 1 || shape.batches_per_epoch < 1 || shape.steps < 1 ||
      shape.window_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger: world size ", shape.world_size, ", ", shape.batches_per_epoch,
                     " batches per epoch, ", shape.steps, " steps and a window of ",
                     shape.window_steps, " steps must all be at least 1"));
  }
  return JobLedger(shape);
}

absl::StatusOr<JobLedger> JobLedger::Restore(const LedgerShape& shape, LedgerSnapshot snapshot) {
  absl::StatusOr<JobLedger> ledger = Create(shape);
  if (!ledger.ok()) return ledger.status();
  const int64_t total = ledger->total_batches();
  if (snapshot.generation < 1 || snapshot.committed_below < 0 || snapshot.committed_below > total) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger snapshot: generation ", snapshot.generation, " and cursor ",
                     snapshot.committed_below, " outside a job of ", total, " batches"));
  }
  ledger->generation_ = snapshot.generation;
  ledger->committed_below_ = snapshot.committed_below;
  ledger->progress_step_ = std::max(snapshot.progress_step, ledger->resume_step() - 1);
  ledger->restarts_ = snapshot.restarts;
  for (LedgerEntry& e : snapshot.outstanding) {
    if (e.g < snapshot.committed_below || e.g >= total) {
      return absl::InvalidArgumentError(absl::StrCat("ledger snapshot: outstanding batch ", e.g,
                                                     " outside [", snapshot.committed_below, ", ",
                                                     total, ")"));
    }
    const int64_t g = e.g;
    if (!ledger->outstanding_.emplace(g, std::move(e)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("ledger snapshot: batch ", g, " listed twice"));
    }
  }
  return ledger;
}

LedgerCounts JobLedger::Counts() const {
  LedgerCounts c;
  c.committed = committed_below_;
  for (const auto& [g, e] : outstanding_) {
    (e.state == LedgerEntry::State::kLeased ? c.leased : c.delivered) += 1;
  }
  c.pending = total_batches() - committed_below_ - c.leased - c.delivered;
  return c;
}

LedgerSnapshot JobLedger::Snapshot() const {
  LedgerSnapshot s;
  s.generation = generation_;
  s.committed_below = committed_below_;
  s.progress_step = progress_step_;
  s.restarts = restarts_;
  s.outstanding.reserve(outstanding_.size());
  for (const auto& [g, e] : outstanding_) s.outstanding.push_back(e);
  return s;
}

int64_t JobLedger::WindowEnd() const {
  const int64_t m = shape_.world_size;
  const int64_t from = std::max(committed_below_, (progress_step_ + 1) * m);
  return std::min(total_batches(), from + shape_.window_steps * m);
}

std::vector<LeaseGrant> JobLedger::Lease(const std::string& worker_id, int max, int64_t now_ms,
                                         int64_t lease_ms,
                                         const std::function<std::string()>& new_lease_id) {
  std::vector<LeaseGrant> grants;
  const int64_t end = WindowEnd();
  for (int64_t g = committed_below_; g < end && static_cast<int>(grants.size()) < max; ++g) {
    if (outstanding_.count(g) > 0) continue;
    LedgerEntry e;
    e.g = g;
    e.state = LedgerEntry::State::kLeased;
    e.worker_id = worker_id;
    e.lease_id = new_lease_id();
    e.deadline_ms = now_ms + lease_ms;
    LeaseGrant grant;
    grant.g = g;
    grant.epoch = g / shape_.batches_per_epoch;
    grant.batch_index = g % shape_.batches_per_epoch;
    grant.rank = static_cast<int>(g % shape_.world_size);
    grant.generation = generation_;
    grant.lease_id = e.lease_id;
    grant.deadline_ms = e.deadline_ms;
    grants.push_back(std::move(grant));
    outstanding_.emplace(g, std::move(e));
  }
  return grants;
}

int JobLedger::Return(const std::string& worker_id, const std::vector<std::string>& lease_ids) {
  int returned = 0;
  for (const std::string& id : lease_ids) {
    for (auto it = outstanding_.begin(); it != outstanding_.end(); ++it) {
      const LedgerEntry& e = it->second;
      if (e.state == LedgerEntry::State::kLeased && e.lease_id == id && e.worker_id == worker_id) {
        outstanding_.erase(it);
        ++returned;
        break;
      }
    }
  }
  return returned;
}

absl::Status JobLedger::Deliver(int64_t generation, int64_t step, const std::vector<int64_t>& gs) {
  if (generation != generation_) {
    return absl::FailedPreconditionError(absl::StrCat("progress of generation ", generation,
                                                      ", the job is at generation ", generation_));
  }
  if (step < 0 || step >= shape_.steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("step ", step, " outside the job's ", shape_.steps, " steps"));
  }
  for (int64_t g : gs) {
    if (g < 0 || g >= total_batches()) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch ", g, " outside the job's ", total_batches(), " batches"));
    }
  }
  for (int64_t g : gs) {
    if (g < committed_below_) continue;
    LedgerEntry& e = outstanding_[g];
    e.g = g;
    e.state = LedgerEntry::State::kDelivered;
    e.worker_id.clear();
    e.lease_id.clear();
    e.deadline_ms = 0;
    e.step = step;
  }
  progress_step_ = std::max(progress_step_, step);
  return absl::OkStatus();
}

absl::Status JobLedger::Commit(int64_t generation, int64_t step) {
  if (generation != generation_) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint of generation ", generation,
                                                      ", the job is at generation ", generation_));
  }
  if (step < 0 || step >= shape_.steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint step ", step, " outside the job's ", shape_.steps, " steps"));
  }
  const int64_t cursor = (step + 1) * shape_.world_size;
  if (cursor <= committed_below_) return absl::OkStatus();
  committed_below_ = cursor;
  outstanding_.erase(outstanding_.begin(), outstanding_.lower_bound(cursor));
  progress_step_ = std::max(progress_step_, step);
  return absl::OkStatus();
}

int JobLedger::ReleaseWorker(const std::string& worker_id) {
  int released = 0;
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    if (it->second.state == LedgerEntry::State::kLeased && it->second.worker_id == worker_id) {
      it = outstanding_.erase(it);
      ++released;
    } else {
      ++it;
    }
  }
  return released;
}

int JobLedger::ExpireLeases(int64_t now_ms) {
  int expired = 0;
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    if (it->second.state == LedgerEntry::State::kLeased && it->second.deadline_ms < now_ms) {
      it = outstanding_.erase(it);
      ++expired;
    } else {
      ++it;
    }
  }
  return expired;
}

int64_t JobLedger::Restart() {
  ++generation_;
  ++restarts_;
  outstanding_.clear();
  progress_step_ = resume_step() - 1;
  return generation_;
}

}  // namespace vjepa::coordinator
