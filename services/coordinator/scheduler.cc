#include "services/coordinator/scheduler.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

namespace vjepa::coordinator {
namespace {

bool HoldsAny(const SchedJob& job) {
  return std::any_of(job.trainers_held.begin(), job.trainers_held.end(),
                     [](const std::string& t) { return !t.empty(); });
}

// The order jobs are served in: those recovering a gang first (they hold trainers), then by
// priority, submission order and id.
std::vector<const SchedJob*> ServiceOrder(const std::vector<SchedJob>& jobs) {
  std::vector<const SchedJob*> order;
  for (const SchedJob& j : jobs) order.push_back(&j);
  std::sort(order.begin(), order.end(), [](const SchedJob* a, const SchedJob* b) {
    return std::make_tuple(!HoldsAny(*a), -a->priority, a->order, a->id) <
           std::make_tuple(!HoldsAny(*b), -b->priority, b->order, b->id);
  });
  return order;
}

// Dataworkers per running job: one each while there are enough (in service order), the rest in
// proportion to demand by largest remainder.
std::vector<int> DataworkerQuota(const std::vector<const SchedJob*>& running, int n) {
  std::vector<int> quota(running.size(), 0);
  if (running.empty() || n <= 0) return quota;
  if (n <= static_cast<int>(running.size())) {
    for (int i = 0; i < n; ++i) quota[i] = 1;
    return quota;
  }
  const int extra = n - static_cast<int>(running.size());
  double total = 0;
  for (const SchedJob* j : running) total += std::max(j->demand, 1e-9);
  std::vector<std::pair<double, int>> remainders;
  int given = 0;
  for (size_t i = 0; i < running.size(); ++i) {
    const double exact = extra * std::max(running[i]->demand, 1e-9) / total;
    const int whole = static_cast<int>(std::floor(exact));
    quota[i] = 1 + whole;
    given += whole;
    remainders.push_back({exact - whole, static_cast<int>(i)});
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int k = 0; k < extra - given; ++k) quota[remainders[k % remainders.size()].second] += 1;
  return quota;
}

}  // namespace

SchedulePlan Schedule(const std::vector<SchedJob>& jobs, const std::vector<SchedWorker>& workers) {
  SchedulePlan plan;
  std::set<std::string> free_trainers;
  std::set<std::string> gpu_trainers;
  std::vector<const SchedWorker*> dataworkers;
  for (const SchedWorker& w : workers) {
    if (w.trainer) {
      free_trainers.insert(w.id);
      if (w.cuda) gpu_trainers.insert(w.id);
    } else {
      dataworkers.push_back(&w);
    }
  }
  // Whether trainer t can serve job j.
  auto fits = [&](const SchedJob& j, const std::string& t) {
    return (gpu_trainers.count(t) > 0) == j.cuda;
  };
  std::sort(dataworkers.begin(), dataworkers.end(),
            [](const SchedWorker* a, const SchedWorker* b) { return a->id < b->id; });
  const std::vector<const SchedJob*> order = ServiceOrder(jobs);
  for (const SchedJob* j : order) plan.jobs[j->id];

  // A job whose whole gang is alive keeps it, ranks unchanged.
  std::set<std::string> kept;
  for (const SchedJob* j : order) {
    const auto& held = j->trainers_held;
    if (static_cast<int>(held.size()) != j->trainers) continue;
    std::set<std::string> distinct(held.begin(), held.end());
    const bool whole = distinct.size() == held.size() &&
                       std::all_of(held.begin(), held.end(), [&](const std::string& t) {
                         return !t.empty() && free_trainers.count(t) > 0 && fits(*j, t);
                       });
    if (!whole) continue;
    for (const std::string& t : held) free_trainers.erase(t);
    plan.jobs[j->id].trainers = held;
    kept.insert(j->id);
  }
  // The others, strictly in service order: all M trainers or wait, and nobody passes a job that
  // waits for the same kind of trainer.
  bool blocked[2] = {false, false};  // CPU, GPU
  for (const SchedJob* j : order) {
    if (kept.count(j->id) > 0 || blocked[j->cuda]) continue;
    std::vector<std::string> pick;
    for (const std::string& t : j->trainers_held) {
      if (!t.empty() && free_trainers.count(t) > 0 && fits(*j, t) &&
          std::find(pick.begin(), pick.end(), t) == pick.end() &&
          static_cast<int>(pick.size()) < j->trainers) {
        pick.push_back(t);
      }
    }
    for (const std::string& t : free_trainers) {
      if (static_cast<int>(pick.size()) >= j->trainers) break;
      if (fits(*j, t) && std::find(pick.begin(), pick.end(), t) == pick.end()) pick.push_back(t);
    }
    if (static_cast<int>(pick.size()) < j->trainers) {
      blocked[j->cuda] = true;
      continue;
    }
    for (const std::string& t : pick) free_trainers.erase(t);
    JobPlacement& p = plan.jobs[j->id];
    p.trainers = pick;
    p.gang_changed = true;
  }
  plan.idle_trainers.assign(free_trainers.begin(), free_trainers.end());

  // Dataworkers for the running jobs.
  std::vector<const SchedJob*> running;
  for (const SchedJob* j : order) {
    if (!plan.jobs[j->id].trainers.empty()) running.push_back(j);
  }
  const std::vector<int> quota = DataworkerQuota(running, static_cast<int>(dataworkers.size()));
  std::set<std::string> unassigned;
  for (const SchedWorker* w : dataworkers) unassigned.insert(w->id);
  for (size_t i = 0; i < running.size(); ++i) {  // a worker stays with its job within the quota
    JobPlacement& p = plan.jobs[running[i]->id];
    for (const SchedWorker* w : dataworkers) {
      if (static_cast<int>(p.dataworkers.size()) >= quota[i]) break;
      if (w->job_id == running[i]->id && unassigned.erase(w->id) > 0) {
        p.dataworkers.push_back(w->id);
      }
    }
  }
  for (size_t i = 0; i < running.size(); ++i) {  // then the free ones, by id
    JobPlacement& p = plan.jobs[running[i]->id];
    while (static_cast<int>(p.dataworkers.size()) < quota[i] && !unassigned.empty()) {
      p.dataworkers.push_back(*unassigned.begin());
      unassigned.erase(unassigned.begin());
    }
    std::sort(p.dataworkers.begin(), p.dataworkers.end());
  }
  plan.idle_dataworkers.assign(unassigned.begin(), unassigned.end());
  return plan;
}

}  // namespace vjepa::coordinator
