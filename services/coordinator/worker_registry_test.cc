#include "services/coordinator/worker_registry.h"

#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::coordinator {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

const rpc::Principal kWorker{"worker-a", rpc::Role::kWorker};
const rpc::Principal kOtherWorker{"worker-b", rpc::Role::kWorker};
const rpc::Principal kUser{"alice", rpc::Role::kUser};

v1::RegisterWorkerRequest Reg(const std::string& name, int64_t incarnation,
                              v1::WorkerKind kind = v1::DATAWORKER) {
  v1::RegisterWorkerRequest r;
  r.set_name(name);
  r.set_incarnation(incarnation);
  r.set_kind(kind);
  r.set_advertise_address("127.0.0.1:7000");
  r.set_cpus(2);
  r.set_device("cpu");
  return r;
}

class WorkerRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.File("c.db"));
    ASSERT_OK(store.status());
    store_ = std::move(*store);
    Reopen();
  }
  void Reopen() {
    registry_.reset();
    metrics_ = std::make_unique<metrics::Registry>();
    WorkerRegistryOptions o;
    o.heartbeat_interval = absl::Seconds(1);
    o.lost_after = absl::Seconds(5);
    o.now = [this] { return now_; };
    registry_ = std::make_unique<WorkerRegistry>(store_.get(), *metrics_, o);
    ASSERT_OK(registry_->Init());
  }
  v1::Worker MustRegister(const rpc::Principal& p, const v1::RegisterWorkerRequest& r) {
    v1::RegisterWorkerResponse resp;
    EXPECT_OK(registry_->RegisterWorker(p, r, &resp));
    return resp.worker();
  }
  absl::Status Beat(const rpc::Principal& p, const std::string& id) {
    v1::HeartbeatRequest r;
    r.set_worker_id(id);
    v1::HeartbeatResponse resp;
    return registry_->Heartbeat(p, r, &resp);
  }
  std::vector<v1::Worker> List(const rpc::Principal& p) {
    v1::ListWorkersResponse resp;
    EXPECT_OK(registry_->ListWorkers(p, {}, &resp));
    return {resp.workers().begin(), resp.workers().end()};
  }

  testing::ScratchDir dir_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  std::unique_ptr<Store> store_;
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<WorkerRegistry> registry_;
};

TEST_F(WorkerRegistryTest, AWorkerThatMissesItsDeadlineIsDeclaredLost) {
  v1::Worker w = MustRegister(kWorker, Reg("dw-0", 1));
  EXPECT_EQ(w.state(), v1::ALIVE);
  now_ += absl::Seconds(4);
  ASSERT_OK(Beat(kWorker, w.id()));
  now_ += absl::Seconds(4);
  EXPECT_EQ(registry_->CheckDeadlines(), 0);  // 4 s since the last heartbeat: within 5 s
  now_ += absl::Seconds(2);
  EXPECT_EQ(registry_->CheckDeadlines(), 1);
  auto workers = List(kUser);
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state(), v1::LOST);
  EXPECT_EQ(workers[0].message(), "no heartbeat for 6000 ms (deadline 5000 ms)");
  EXPECT_THAT(Beat(kWorker, w.id()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is LOST")));
  EXPECT_THAT(metrics::Render(*metrics_),
              HasSubstr("vjepa_coordinator_workers_lost_total{kind=\"dataworker\"} 1"));
  // Re-registering with the same incarnation is refused; a higher one is a new worker.
  v1::RegisterWorkerResponse resp;
  EXPECT_THAT(registry_->RegisterWorker(kWorker, Reg("dw-0", 1), &resp),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("higher incarnation")));
  v1::Worker again = MustRegister(kWorker, Reg("dw-0", 2));
  EXPECT_NE(again.id(), w.id());
  EXPECT_OK(Beat(kWorker, again.id()));
}

TEST_F(WorkerRegistryTest, RegistrationIsIdempotentAndANewIncarnationReplacesTheOld) {
  v1::Worker w = MustRegister(kWorker, Reg("tr-0", 1, v1::TRAINER));
  v1::Worker same = MustRegister(kWorker, Reg("tr-0", 1, v1::TRAINER));
  EXPECT_EQ(same.id(), w.id());
  v1::Worker next = MustRegister(kWorker, Reg("tr-0", 5, v1::TRAINER));
  EXPECT_NE(next.id(), w.id());
  auto workers = List(kUser);
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0].state(), v1::GONE);
  EXPECT_EQ(workers[0].message(), "replaced by incarnation 5");
  EXPECT_EQ(workers[1].state(), v1::ALIVE);
  v1::RegisterWorkerResponse resp;
  EXPECT_THAT(registry_->RegisterWorker(kWorker, Reg("tr-0", 3, v1::TRAINER), &resp),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "worker tr-0: incarnation 3 is older than the registered incarnation 5"));
}

TEST_F(WorkerRegistryTest, RefusesBadRegistrationsAndOtherPrincipalsWorkers) {
  struct Case {
    v1::RegisterWorkerRequest req;
    std::string message;
  } cases[] = {
      {Reg("", 1), "name: must be 1..128 characters of [A-Za-z0-9._:-], got \"\""},
      {Reg("a b", 1), "name: must be 1..128 characters of [A-Za-z0-9._:-], got \"a b\""},
      {Reg("ok", 0), "incarnation: must be > 0, got 0"},
      {Reg("ok", 1, v1::WORKER_KIND_UNSPECIFIED), "kind: must be TRAINER or DATAWORKER, got 0"},
  };
  for (const auto& c : cases) {
    v1::RegisterWorkerResponse resp;
    EXPECT_THAT(registry_->RegisterWorker(kWorker, c.req, &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, c.message));
  }
  v1::Worker w = MustRegister(kWorker, Reg("dw-1", 1));
  v1::RegisterWorkerResponse resp;
  EXPECT_THAT(registry_->RegisterWorker(kOtherWorker, Reg("dw-1", 2), &resp),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("another principal")));
  EXPECT_THAT(Beat(kOtherWorker, w.id()), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(Beat(kWorker, "w-unknown"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  // Workers list only themselves; users see everyone.
  MustRegister(kOtherWorker, Reg("dw-2", 1));
  EXPECT_EQ(List(kWorker).size(), 1u);
  EXPECT_EQ(List(kUser).size(), 2u);
}

TEST_F(WorkerRegistryTest, ARestartedCoordinatorGivesAliveWorkersOneDeadlineOfGrace) {
  v1::Worker alive = MustRegister(kWorker, Reg("dw-0", 1));
  v1::Worker lost = MustRegister(kWorker, Reg("dw-1", 1));
  now_ += absl::Seconds(3);
  ASSERT_OK(Beat(kWorker, alive.id()));
  now_ += absl::Seconds(3);
  EXPECT_EQ(registry_->CheckDeadlines(), 1);  // dw-1, silent for 6 s
  // The coordinator is down for a minute; on restart the survivors get a fresh deadline.
  now_ += absl::Minutes(1);
  Reopen();
  EXPECT_EQ(registry_->CheckDeadlines(), 0);
  std::map<std::string, v1::WorkerState> states;
  for (const auto& w : List(kUser)) states[w.name()] = w.state();
  EXPECT_EQ(states,
            (std::map<std::string, v1::WorkerState>{{"dw-0", v1::ALIVE}, {"dw-1", v1::LOST}}));
  EXPECT_OK(Beat(kWorker, alive.id()));
  now_ += absl::Seconds(6);
  EXPECT_EQ(registry_->CheckDeadlines(), 1);
}

TEST_F(WorkerRegistryTest, TheReaperThreadDeclaresSilentWorkersLost) {
  // Real clock: a 50 ms deadline, polled by the reaper; bounded wait.
  registry_.reset();
  WorkerRegistryOptions o;
  o.heartbeat_interval = absl::Milliseconds(10);
  o.lost_after = absl::Milliseconds(50);
  registry_ = std::make_unique<WorkerRegistry>(store_.get(), *metrics_, o);
  ASSERT_OK(registry_->Init());
  MustRegister(kWorker, Reg("dw-9", 1));
  registry_->StartReaper();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && List(kUser)[0].state() != v1::LOST) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(List(kUser)[0].state(), v1::LOST);
  registry_->Stop();
}

}  // namespace
}  // namespace vjepa::coordinator
