// Authentication and authorisation of every coordinator RPC, against a real in-process server.
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/rpc/auth.h"
#include "common/rpc/client.h"
#include "common/status/grpc_status.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/coordinator/coordinator_server.h"
#include "tests/test_cluster.h"
#include "vjepa/v1/checkpoint.grpc.pb.h"
#include "vjepa/v1/data.grpc.pb.h"
#include "vjepa/v1/job.grpc.pb.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

// Calls `method` ("/pkg.Service/Method") with one empty request message, whatever its kind
// (unary or streaming), and returns the final status.
grpc::Status CallRaw(grpc::Channel* channel, const std::string& method, const std::string& token) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  rpc::AttachToken(&ctx, token);
  auto call = stub.PrepareCall(&ctx, method, &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  call->WritesDone(reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  // Drain until the Finish tag.
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

class CoordinatorAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("tokens", testing::TestTokenFile());
    coordinator::CoordinatorConfig config;
    config.listen = "127.0.0.1:0";
    config.data_dir = dir_.File("data");
    config.auth_tokens = dir_.File("tokens");
    auto server = coordinator::CoordinatorServer::Create(config);
    ASSERT_OK(server.status());
    server_ = std::move(*server);
    ASSERT_OK(server_->Start());
    auto channel = rpc::MakeChannel({absl::StrCat("127.0.0.1:", server_->BoundPort())});
    ASSERT_OK(channel.status());
    channel_ = *channel;
    jobs_ = v1::JobService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  absl::StatusOr<v1::Job> Submit(const std::string& token, const std::string& name) {
    auto ctx = rpc::MakeContext(token, absl::Seconds(20));
    v1::SubmitJobRequest req;
    req.set_spec_yaml("name: " + name + "\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\n");
    v1::SubmitJobResponse resp;
    absl::Status s = FromGrpcStatus(jobs_->SubmitJob(ctx.get(), req, &resp));
    if (!s.ok()) return s;
    return resp.job();
  }
  absl::Status Get(const std::string& token, const std::string& id) {
    auto ctx = rpc::MakeContext(token, absl::Seconds(20));
    v1::GetJobRequest req;
    req.set_id(id);
    v1::GetJobResponse resp;
    return FromGrpcStatus(jobs_->GetJob(ctx.get(), req, &resp));
  }
  absl::Status Cancel(const std::string& token, const std::string& id) {
    auto ctx = rpc::MakeContext(token, absl::Seconds(20));
    v1::CancelJobRequest req;
    req.set_id(id);
    v1::CancelJobResponse resp;
    return FromGrpcStatus(jobs_->CancelJob(ctx.get(), req, &resp));
  }
  int CountJobs(const std::string& token) {
    auto ctx = rpc::MakeContext(token, absl::Seconds(20));
    v1::ListJobsResponse resp;
    EXPECT_TRUE(jobs_->ListJobs(ctx.get(), {}, &resp).ok());
    return resp.jobs_size();
  }

  testing::ScratchDir dir_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_F(CoordinatorAuthTest, EveryMethodOfEveryServedServiceNeedsAToken) {
  // Touch one message of each file so the linker keeps every generated descriptor.
  (void)v1::Job::descriptor();
  (void)v1::Worker::descriptor();
  (void)v1::Checkpoint::descriptor();
  (void)v1::BatchMessage::descriptor();
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  // Every service of the API except DataService, which dataworkers serve.
  std::set<std::string> served;
  int methods = 0;
  for (const char* file : {"vjepa/v1/job.proto", "vjepa/v1/worker.proto",
                           "vjepa/v1/checkpoint.proto", "vjepa/v1/data.proto"}) {
    const auto* fd = pool->FindFileByName(file);
    ASSERT_NE(fd, nullptr) << file;
    for (int s = 0; s < fd->service_count(); ++s) {
      const auto* service = fd->service(s);
      if (service->full_name() == "vjepa.v1.DataService") continue;
      served.insert(service->full_name());
      for (int m = 0; m < service->method_count(); ++m) {
        const std::string method =
            absl::StrCat("/", service->full_name(), "/", service->method(m)->name());
        for (const std::string& token : {std::string(), std::string("not-a-known-token-xx")}) {
          grpc::Status s = CallRaw(channel_.get(), method, token);
          EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
              << method << " with token '" << token << "': " << s.error_message();
        }
        ++methods;
      }
    }
  }
  EXPECT_EQ(served, (std::set<std::string>{"vjepa.v1.JobService", "vjepa.v1.WorkerService",
                                           "vjepa.v1.CheckpointService"}));
  EXPECT_GE(methods, 14);  // DeleteJob included
  // Health needs no token.
  grpc::Status health = CallRaw(channel_.get(), "/grpc.health.v1.Health/Check", "");
  EXPECT_TRUE(health.ok()) << health.error_message();
}

TEST_F(CoordinatorAuthTest, UsersTouchOnlyTheirOwnJobsAdminsAllWorkersNone) {
  ASSERT_OK_AND_ASSIGN(v1::Job alices, Submit(testing::kAliceToken, "alices"));
  ASSERT_OK_AND_ASSIGN(v1::Job bobs, Submit(testing::kBobToken, "bobs"));

  // No token, a wrong token.
  EXPECT_THAT(Get("", alices.id()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("missing bearer token")));
  EXPECT_THAT(Get("wrong-token-0123456789", alices.id()),
              StatusIs(absl::StatusCode::kUnauthenticated, "unknown bearer token"));
  // User A on B's job: as if it did not exist.
  EXPECT_OK(Get(testing::kAliceToken, alices.id()));
  EXPECT_THAT(Get(testing::kAliceToken, bobs.id()),
              StatusIs(absl::StatusCode::kNotFound, "job " + bobs.id() + " not found"));
  EXPECT_THAT(Cancel(testing::kAliceToken, bobs.id()),
              StatusIs(absl::StatusCode::kNotFound, "job " + bobs.id() + " not found"));
  EXPECT_EQ(CountJobs(testing::kAliceToken), 1);
  // A worker token on user RPCs.
  EXPECT_THAT(Submit(testing::kWorkerToken, "w").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("role worker")));
  EXPECT_THAT(Get(testing::kWorkerToken, alices.id()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("role worker")));
  // A user token on worker RPCs.
  {
    auto ctx = rpc::MakeContext(testing::kAliceToken, absl::Seconds(20));
    v1::RegisterWorkerRequest req;
    req.set_name("fake");
    req.set_incarnation(1);
    req.set_kind(v1::TRAINER);
    v1::RegisterWorkerResponse resp;
    EXPECT_EQ(workers_->RegisterWorker(ctx.get(), req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // Checkpoints: a user cannot upload, a worker cannot delete jobs, nobody deletes another
  // user's job.
  {
    auto ctx = rpc::MakeContext(testing::kAliceToken, absl::Seconds(20));
    v1::UploadCheckpointResponse resp;
    auto writer = workers_->UploadCheckpoint(ctx.get(), &resp);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  for (const auto& [token, code] :
       {std::pair{testing::kWorkerToken, grpc::StatusCode::PERMISSION_DENIED},
        std::pair{testing::kAliceToken, grpc::StatusCode::NOT_FOUND}}) {
    auto ctx = rpc::MakeContext(token, absl::Seconds(20));
    v1::DeleteJobRequest req;
    req.set_id(bobs.id());
    v1::DeleteJobResponse resp;
    EXPECT_EQ(jobs_->DeleteJob(ctx.get(), req, &resp).error_code(), code) << token;
  }
  // An admin sees and cancels everyone's jobs.
  EXPECT_EQ(CountJobs(testing::kAdminToken), 2);
  EXPECT_OK(Get(testing::kAdminToken, bobs.id()));
  EXPECT_OK(Cancel(testing::kAdminToken, bobs.id()));
  EXPECT_OK(Cancel(testing::kBobToken, bobs.id()));  // idempotent, and still bob's
}

}  // namespace
}  // namespace vjepa
