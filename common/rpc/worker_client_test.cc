#include "common/rpc/worker_client.h"

#include <memory>
#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace vjepa::rpc {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

// Answers RegisterWorker with worker id "w-1" and a 750 ms heartbeat interval, keeping the
// request and the bearer token; refuses a worker named "refused".
class FakeWorkerService : public v1::WorkerService::Service {
 public:
  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* req,
                              v1::RegisterWorkerResponse* resp) override {
    request = *req;
    auto it = ctx->client_metadata().find("authorization");
    if (it != ctx->client_metadata().end())
      authorization.assign(it->second.data(), it->second.size());
    if (req->name() == "refused") {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not a worker token");
    }
    resp->mutable_worker()->set_id("w-1");
    resp->set_heartbeat_interval_ms(750);
    return grpc::Status::OK;
  }

  v1::RegisterWorkerRequest request;
  std::string authorization;
};

class WorkerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    stub_ = v1::WorkerService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override { server_->Shutdown(); }

  FakeWorkerService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
};

TEST_F(WorkerClientTest, RegisterWorkerSendsTheIdentityAndIncarnation) {
  const WorkerIdentity self{"trainer-0", v1::TRAINER, "10.0.0.5", 8, "cuda:0"};
  ASSERT_OK_AND_ASSIGN(v1::RegisterWorkerResponse resp,
                       RegisterWorker(*stub_, self, 42, "tok", absl::Seconds(10)));
  EXPECT_EQ(resp.worker().id(), "w-1");
  EXPECT_EQ(service_.request.name(), "trainer-0");
  EXPECT_EQ(service_.request.kind(), v1::TRAINER);
  EXPECT_EQ(service_.request.advertise_address(), "10.0.0.5");
  EXPECT_EQ(service_.request.cpus(), 8);
  EXPECT_EQ(service_.request.device(), "cuda:0");
  EXPECT_EQ(service_.request.incarnation(), 42);
  EXPECT_THAT(service_.authorization, HasSubstr("tok"));
}

TEST_F(WorkerClientTest, RegisterWorkerReturnsTheCallsError) {
  const WorkerIdentity self{"refused", v1::DATAWORKER, "", 1, "cpu"};
  EXPECT_THAT(RegisterWorker(*stub_, self, 1, "tok", absl::Seconds(10)).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not a worker token")));
}

TEST(WorkerClient, MustReregisterOnNotFoundAndFailedPrecondition) {
  EXPECT_TRUE(MustReregister(absl::NotFoundError("unknown worker")));
  EXPECT_TRUE(MustReregister(absl::FailedPreconditionError("newer incarnation")));
  EXPECT_FALSE(MustReregister(absl::UnavailableError("down")));
  EXPECT_FALSE(MustReregister(absl::OkStatus()));
}

TEST(WorkerClient, HeartbeatIntervalKeepsTheCurrentOneWhenTheAnswerNamesNone) {
  EXPECT_EQ(HeartbeatInterval(500, absl::Seconds(2)), absl::Milliseconds(500));
  EXPECT_EQ(HeartbeatInterval(0, absl::Seconds(2)), absl::Seconds(2));
  EXPECT_EQ(HeartbeatInterval(-1, absl::Seconds(2)), absl::Seconds(2));
}

TEST(WorkerClient, RegisteredMessage) {
  EXPECT_EQ(RegisteredMessage("c:7000", "w-1", "dw-a", 12, absl::Milliseconds(1500)),
            "registered with the coordinator at c:7000 as w-1 (name dw-a, incarnation 12, "
            "heartbeat every 1.5s)");
}

TEST(WorkerClient, CoordinatorChannelErrorsNameTheFlag) {
  EXPECT_THAT(CoordinatorChannel("", "tok", TlsFiles()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--coordinator: ")));
}

}  // namespace
}  // namespace vjepa::rpc
