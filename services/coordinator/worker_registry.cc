#include "services/coordinator/worker_registry.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/coordinator/ids.h"

namespace vjepa::coordinator {
namespace {

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxFieldBytes = 256;

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

const char* KindLabel(v1::WorkerKind k) { return k == v1::TRAINER ? "trainer" : "dataworker"; }

}  // namespace

WorkerRegistry::WorkerRegistry(Store* store, metrics::Registry& registry,
                               WorkerRegistryOptions options)
    : store_(store),
      options_(std::move(options)),
      workers_(metrics::AddGauge(registry, "vjepa_coordinator_workers",
                                 "Registered workers, by kind and state.")),
      lost_(metrics::AddCounter(registry, "vjepa_coordinator_workers_lost_total",
                                "Workers declared LOST after missing their heartbeat deadline, "
                                "by kind.")),
      registrations_(metrics::AddCounter(registry, "vjepa_coordinator_worker_registrations_total",
                                         "RegisterWorker calls accepted, by kind.")),
      heartbeats_(metrics::AddCounter(registry, "vjepa_coordinator_heartbeats_total",
                                      "Heartbeats accepted.")
                      .Add({})),
      refused_(metrics::AddCounter(registry, "vjepa_coordinator_worker_calls_refused_total",
                                   "RegisterWorker and Heartbeat calls refused, by reason.")) {
  // Every labelled series exists from the start (at 0), so that dashboards and alerts see it.
  for (const char* kind : {"trainer", "dataworker"}) {
    lost_.Add({{"kind", kind}});
    registrations_.Add({{"kind", kind}});
  }
  for (const char* reason : {"invalid", "owner", "stale", "unknown", "not_alive"}) {
    refused_.Add({{"reason", reason}});
  }
}

WorkerRegistry::~WorkerRegistry() { Stop(); }

absl::Status WorkerRegistry::Init() {
  ASSIGN_OR_RETURN(auto workers, store_->ListWorkers());
  absl::MutexLock lock(&mu_);
  const int64_t now = absl::ToUnixMillis(options_.now());
  for (v1::Worker& w : workers) {
    // Heartbeats are not persisted: an ALIVE worker gets a full deadline from now.
    if (w.state() == v1::ALIVE) w.set_last_heartbeat_ms(now);
    auto it = id_by_name_.find(w.name());
    if (it == id_by_name_.end() || by_id_[it->second].incarnation() < w.incarnation()) {
      id_by_name_[w.name()] = w.id();
    }
    by_id_[w.id()] = std::move(w);
  }
  RefreshGaugesLocked();
  return absl::OkStatus();
}

void WorkerRegistry::StartReaper() {
  reaper_ = std::thread([this] {
    const absl::Duration tick = std::max(
        absl::Milliseconds(10), std::min(options_.heartbeat_interval, options_.lost_after / 4));
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick)) return;
      }
      CheckDeadlines();
    }
  });
}

void WorkerRegistry::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
}

absl::Status WorkerRegistry::PersistLocked(const v1::Worker& w) {
  absl::Status s = store_->PutWorker(w);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("could not store worker: ", s.message()));
  return s;
}

void WorkerRegistry::RefreshGaugesLocked() {
  std::map<std::pair<std::string, std::string>, int> counts;
  for (v1::WorkerKind k : {v1::TRAINER, v1::DATAWORKER}) {
    for (v1::WorkerState s : {v1::ALIVE, v1::LOST, v1::GONE}) {
      counts[{KindLabel(k), v1::WorkerState_Name(s)}] = 0;
    }
  }
  for (const auto& [id, w] : by_id_)
    ++counts[{KindLabel(w.kind()), v1::WorkerState_Name(w.state())}];
  for (const auto& [key, n] : counts) {
    workers_.Add({{"kind", key.first}, {"state", key.second}}).Set(n);
  }
}

absl::Status WorkerRegistry::RegisterWorker(const rpc::Principal& caller,
                                            const v1::RegisterWorkerRequest& req,
                                            v1::RegisterWorkerResponse* resp) {
  auto refuse = [&](const char* reason, absl::Status s) {
    refused_.Add({{"reason", reason}}).Increment();
    return s;
  };
  if (!ValidName(req.name())) {
    return refuse("invalid",
                  absl::InvalidArgumentError(absl::StrCat(
                      "name: must be 1..", kMaxNameBytes, " characters of [A-Za-z0-9._:-], got \"",
                      req.name().substr(0, kMaxNameBytes), "\"")));
  }
  if (req.incarnation() <= 0) {
    return refuse("invalid", absl::InvalidArgumentError(absl::StrCat(
                                 "incarnation: must be > 0, got ", req.incarnation())));
  }
  if (req.kind() != v1::TRAINER && req.kind() != v1::DATAWORKER) {
    return refuse("invalid",
                  absl::InvalidArgumentError(absl::StrCat(
                      "kind: must be TRAINER or DATAWORKER, got ", static_cast<int>(req.kind()))));
  }
  if (req.advertise_address().size() > kMaxFieldBytes || req.device().size() > kMaxFieldBytes) {
    return refuse("invalid",
                  absl::InvalidArgumentError(absl::StrCat(
                      "advertise_address and device: must be at most ", kMaxFieldBytes, " bytes")));
  }
  if (req.cpus() < 0) {
    return refuse("invalid",
                  absl::InvalidArgumentError(absl::StrCat("cpus: must be >= 0, got ", req.cpus())));
  }
  std::vector<v1::Worker> left;
  absl::Status result = [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    const int64_t now = absl::ToUnixMillis(options_.now());
    resp->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
    resp->set_lost_after_ms(absl::ToInt64Milliseconds(options_.lost_after));

    auto it = id_by_name_.find(req.name());
    if (it != id_by_name_.end()) {
      v1::Worker& old = by_id_[it->second];
      if (!caller.is_admin() && old.principal() != caller.name) {
        return refuse("owner",
                      absl::PermissionDeniedError(absl::StrCat(
                          "worker name ", req.name(), " is registered by another principal")));
      }
      if (req.incarnation() < old.incarnation()) {
        return refuse("stale",
                      absl::FailedPreconditionError(absl::StrCat(
                          "worker ", req.name(), ": incarnation ", req.incarnation(),
                          " is older than the registered incarnation ", old.incarnation())));
      }
      if (req.incarnation() == old.incarnation() && old.state() == v1::ALIVE) {
        // A retried registration: the same worker again.
        old.set_advertise_address(req.advertise_address());
        old.set_last_heartbeat_ms(now);
        RETURN_IF_ERROR(PersistLocked(old));
        *resp->mutable_worker() = old;
        return absl::OkStatus();
      }
      if (req.incarnation() == old.incarnation()) {
        return refuse("stale", absl::FailedPreconditionError(absl::StrCat(
                                   "worker ", req.name(), " incarnation ", req.incarnation(),
                                   " was declared ", v1::WorkerState_Name(old.state()),
                                   ": register with a higher incarnation")));
      }
      if (old.state() == v1::ALIVE) {
        old.set_state(v1::GONE);
        old.set_message(absl::StrCat("replaced by incarnation ", req.incarnation()));
        RETURN_IF_ERROR(PersistLocked(old));
        left.push_back(old);
      }
    }

    v1::Worker w;
    w.set_id(NewId("w-"));
    w.set_name(req.name());
    w.set_incarnation(req.incarnation());
    w.set_kind(req.kind());
    w.set_state(v1::ALIVE);
    w.set_advertise_address(req.advertise_address());
    w.set_register_time_ms(now);
    w.set_last_heartbeat_ms(now);
    w.set_cpus(req.cpus());
    w.set_device(req.device());
    w.set_principal(caller.name);
    RETURN_IF_ERROR(PersistLocked(w));
    id_by_name_[w.name()] = w.id();
    by_id_[w.id()] = w;
    registrations_.Add({{"kind", KindLabel(w.kind())}}).Increment();
    RefreshGaugesLocked();
    *resp->mutable_worker() = std::move(w);
    return absl::OkStatus();
  }();
  Notify(left);
  return result;
}

void WorkerRegistry::SetListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void WorkerRegistry::Notify(const std::vector<v1::Worker>& left) {
  if (left.empty()) return;
  Listener listener;
  {
    absl::MutexLock lock(&mu_);
    listener = listener_;
  }
  if (!listener) return;
  for (const v1::Worker& w : left) listener(w);
}

std::vector<v1::Worker> WorkerRegistry::Workers() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Worker> out;
  out.reserve(by_id_.size());
  for (const auto& [id, w] : by_id_) out.push_back(w);
  return out;
}

std::optional<v1::Worker> WorkerRegistry::Get(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

void WorkerRegistry::SetAssignment(const std::string& id, const std::string& job_id, int rank,
                                   int64_t generation) {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  v1::Worker& w = it->second;
  if (w.job_id() == job_id && w.rank() == rank && w.generation() == generation) return;
  w.set_job_id(job_id);
  w.set_rank(rank);
  w.set_generation(generation);
  (void)PersistLocked(w);  // the in-memory state rules; the next change persists again
}

void WorkerRegistry::SetProductionRate(const std::string& id, double clips_per_core_second) {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end() && clips_per_core_second > 0) {
    it->second.set_clips_per_core_second(clips_per_core_second);
  }
}

absl::Status WorkerRegistry::Heartbeat(const rpc::Principal& caller,
                                       const v1::HeartbeatRequest& req,
                                       v1::HeartbeatResponse* resp) {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(req.worker_id());
  if (it == by_id_.end() || (!caller.is_admin() && it->second.principal() != caller.name)) {
    refused_.Add({{"reason", "unknown"}}).Increment();
    return absl::NotFoundError(absl::StrCat("worker ", req.worker_id(), " not found"));
  }
  v1::Worker& w = it->second;
  if (w.state() != v1::ALIVE) {
    refused_.Add({{"reason", "not_alive"}}).Increment();
    return absl::FailedPreconditionError(absl::StrCat("worker ", w.id(), " is ",
                                                      v1::WorkerState_Name(w.state()), " (",
                                                      w.message(), "): register again"));
  }
  w.set_last_heartbeat_ms(absl::ToUnixMillis(options_.now()));
  if (req.status_message().size() <= kMaxFieldBytes) w.set_message(req.status_message());
  heartbeats_.Increment();
  *resp->mutable_worker() = w;
  resp->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  return absl::OkStatus();
}

absl::Status WorkerRegistry::ListWorkers(const rpc::Principal& caller,
                                         const v1::ListWorkersRequest& req,
                                         v1::ListWorkersResponse* resp) {
  absl::MutexLock lock(&mu_);
  std::vector<const v1::Worker*> out;
  for (const auto& [id, w] : by_id_) {
    if (caller.role == rpc::Role::kWorker && w.principal() != caller.name) continue;
    if (req.kind() != v1::WORKER_KIND_UNSPECIFIED && w.kind() != req.kind()) continue;
    if (!req.states().empty() &&
        std::find(req.states().begin(), req.states().end(), w.state()) == req.states().end()) {
      continue;
    }
    out.push_back(&w);
  }
  std::sort(out.begin(), out.end(), [](const v1::Worker* a, const v1::Worker* b) {
    return std::make_tuple(a->register_time_ms(), a->name(), a->incarnation()) <
           std::make_tuple(b->register_time_ms(), b->name(), b->incarnation());
  });
  for (const v1::Worker* w : out) *resp->add_workers() = *w;
  return absl::OkStatus();
}

int WorkerRegistry::CheckDeadlines() {
  std::vector<v1::Worker> left;
  int n = 0;
  {
    absl::MutexLock lock(&mu_);
    const int64_t now = absl::ToUnixMillis(options_.now());
    const int64_t lost_after = absl::ToInt64Milliseconds(options_.lost_after);
    for (auto& [id, w] : by_id_) {
      if (w.state() != v1::ALIVE || now - w.last_heartbeat_ms() <= lost_after) continue;
      w.set_state(v1::LOST);
      w.set_message(absl::StrCat("no heartbeat for ", now - w.last_heartbeat_ms(), " ms (deadline ",
                                 lost_after, " ms)"));
      (void)PersistLocked(w);  // the in-memory state rules; the next change persists again
      lost_.Add({{"kind", KindLabel(w.kind())}}).Increment();
      left.push_back(w);
      ++n;
    }
    if (n) RefreshGaugesLocked();
  }
  Notify(left);
  return n;
}

}  // namespace vjepa::coordinator
