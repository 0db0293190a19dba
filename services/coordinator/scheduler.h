// Scheduling of workers onto jobs (docs/architecture.md §5), as pure logic: given the jobs that
// want workers and the live workers, which trainer serves which rank of which job, and which
// dataworkers serve which job.
//
// Trainers are gang-scheduled: a job gets all of its M trainers or none. Jobs are considered by
// priority (higher first), then by submission order; the order is strict (no backfill), so a
// large job at the head is never starved by smaller ones behind it. A running job keeps its
// trainers and their ranks while they are alive; a job that lost one is scheduled again (its
// surviving trainers are preferred, ranks are given anew).
//
// A job whose resources.device is cuda gets trainers that run on a GPU, any other job trainers
// that run on the CPU; the two kinds queue separately (a job waiting for GPUs does not hold back
// a CPU job behind it, nor the other way round).
//
// Dataworkers are shared between the running jobs in proportion to their demand (the
// dataworker cores a job needs, from its spec until it is measured), at least one each while
// there are enough, by largest remainder; a dataworker stays with its job while the split allows
// it, so a change of demand moves as few workers as possible.
#ifndef VJEPA_SERVICES_COORDINATOR_SCHEDULER_H_
#define VJEPA_SERVICES_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vjepa::coordinator {

struct SchedJob {
  std::string id;
  int trainers = 1;   // M
  int priority = 0;   // higher first
  int64_t order = 0;  // submission order, lower first
  double demand = 1;  // dataworker cores wanted (> 0)
  // The trainers it holds now, by rank ("" for a rank whose trainer is gone); empty when it has
  // none.
  std::vector<std::string> trainers_held;
  bool cuda = false;  // its trainers must run on a GPU
};

struct SchedWorker {
  std::string id;
  bool trainer = true;  // false: a dataworker
  std::string job_id;   // the job it serves now, "" when idle
  bool cuda = false;    // a trainer that runs on a GPU
};

struct JobPlacement {
  std::vector<std::string> trainers;  // by rank; empty when the job waits
  std::vector<std::string> dataworkers;
  // The trainer set differs from trainers_held: the job (re)starts its gang.
  bool gang_changed = false;
};

struct SchedulePlan {
  std::map<std::string, JobPlacement> jobs;  // every job given, placed or waiting
  std::vector<std::string> idle_trainers;
  std::vector<std::string> idle_dataworkers;
};

// `workers` are the live workers only. Deterministic: equal inputs give equal plans.
SchedulePlan Schedule(const std::vector<SchedJob>& jobs, const std::vector<SchedWorker>& workers);

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_SCHEDULER_H_
