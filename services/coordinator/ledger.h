// The batch ledger of one job (docs/architecture.md §4), as transport- and storage-free logic.
//
// A job with M trainers and nb batches per data epoch consumes global batches g = s·M + r (rank
// r, step s), g in [0, steps·M); batch g is batch g mod nb of data epoch g / nb. Each g moves
// PENDING → LEASED(dataworker, lease) → DELIVERED(step) → COMMITTED. The ledger is kept compact:
// a cursor (every g below it is COMMITTED), the outstanding entries (LEASED or DELIVERED), and
// nothing else: a g at or above the cursor without an entry is PENDING.
//
// Commits come only from checkpoints: a checkpoint of step S (0-based: steps 0..S are done)
// commits every g < (S+1)·M. A lost dataworker's leases, expired leases and handed-back leases
// return to PENDING. A lost trainer restarts the job: the generation increases, every outstanding
// entry returns to PENDING, and the trainers resume after the last checkpoint. Calls that carry an
// older generation are refused with FAILED_PRECONDITION (fencing).
//
// Not thread-safe: the owner serialises calls and persists Snapshot() with the effect.
#ifndef VJEPA_SERVICES_COORDINATOR_LEDGER_H_
#define VJEPA_SERVICES_COORDINATOR_LEDGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vjepa::coordinator {

struct LedgerShape {
  int world_size = 1;             // M
  int64_t batches_per_epoch = 1;  // nb = ⌊N / B⌋
  int64_t steps = 1;              // the job's optimizer steps
  // How many steps ahead of the trainers' progress batches may be leased (the prefetch window).
  int64_t window_steps = 4;
};

struct LedgerEntry {
  enum class State { kLeased, kDelivered };
  int64_t g = 0;
  State state = State::kLeased;
  std::string worker_id;  // LEASED: the dataworker producing it
  std::string lease_id;
  int64_t deadline_ms = 0;  // LEASED: returns to PENDING after this
  int64_t step = -1;        // DELIVERED: the step that consumed it
};

// What is persisted: enough to rebuild the ledger after a coordinator restart.
struct LedgerSnapshot {
  int64_t generation = 1;
  int64_t committed_below = 0;  // every g < this is COMMITTED
  int64_t progress_step = -1;   // the last step the trainers reported in this generation
  int64_t restarts = 0;
  std::vector<LedgerEntry> outstanding;  // by g
};

struct LeaseGrant {
  int64_t g = 0;
  int64_t epoch = 0;
  int64_t batch_index = 0;
  int rank = 0;
  int64_t generation = 0;
  std::string lease_id;
  int64_t deadline_ms = 0;
};

struct LedgerCounts {
  int64_t pending = 0;  // between the cursor and the end of the job
  int64_t leased = 0;
  int64_t delivered = 0;
  int64_t committed = 0;
};

class JobLedger {
 public:
  // INVALID_ARGUMENT for a shape without a batch (M, nb or steps < 1, window < 1).
  static absl::StatusOr<JobLedger> Create(const LedgerShape& shape);
  // A ledger rebuilt from a persisted snapshot; INVALID_ARGUMENT when the snapshot does not fit
  // the shape (a g outside the job, an entry below the cursor, a duplicate g).
  static absl::StatusOr<JobLedger> Restore(const LedgerShape& shape, LedgerSnapshot snapshot);

  const LedgerShape& shape() const { return shape_; }
  int64_t generation() const { return generation_; }
  int64_t committed_below() const { return committed_below_; }
  int64_t total_batches() const { return shape_.steps * shape_.world_size; }
  bool complete() const { return committed_below_ >= total_batches(); }
  int64_t restarts() const { return restarts_; }
  // The step the trainers resume from after a restart: the first step not committed.
  int64_t resume_step() const { return committed_below_ / shape_.world_size; }
  LedgerCounts Counts() const;
  LedgerSnapshot Snapshot() const;

  // Up to `max` PENDING g's, lowest first, inside the window (g < (progress + 1 + window)·M),
  // leased to `worker_id` until now_ms + lease_ms. `new_lease_id` names each lease.
  std::vector<LeaseGrant> Lease(const std::string& worker_id, int max, int64_t now_ms,
                                int64_t lease_ms, const std::function<std::string()>& new_lease_id);
  // The dataworker hands leases back unproduced: they return to PENDING. Unknown ids, and ids of
  // another worker, are ignored (a late or duplicate call). Returns how many returned.
  int Return(const std::string& worker_id, const std::vector<std::string>& lease_ids);
  // The trainers consumed `gs` at `step` (progress report). FAILED_PRECONDITION for another
  // generation; INVALID_ARGUMENT for a g outside the job. Committed g's are ignored.
  absl::Status Deliver(int64_t generation, int64_t step, const std::vector<int64_t>& gs);
  // A checkpoint of `step` was committed: every g < (step + 1)·M becomes COMMITTED.
  // FAILED_PRECONDITION for another generation; INVALID_ARGUMENT for a step outside the job.
  // A step at or below the cursor changes nothing.
  absl::Status Commit(int64_t generation, int64_t step);
  // A dataworker was lost: its leases return to PENDING. Returns how many.
  int ReleaseWorker(const std::string& worker_id);
  // Leases past their deadline return to PENDING. Returns how many.
  int ExpireLeases(int64_t now_ms);
  // A trainer was lost: a new generation; every outstanding entry returns to PENDING and the
  // progress restarts from resume_step(). Returns the new generation.
  int64_t Restart();

 private:
  explicit JobLedger(const LedgerShape& shape) : shape_(shape) {}
  int64_t WindowEnd() const;

  LedgerShape shape_;
  int64_t generation_ = 1;
  int64_t committed_below_ = 0;
  int64_t progress_step_ = -1;
  int64_t restarts_ = 0;
  std::map<int64_t, LedgerEntry> outstanding_;  // by g
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_LEDGER_H_
