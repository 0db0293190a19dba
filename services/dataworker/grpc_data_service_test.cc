// StreamBatches over real gRPC, in process on 127.0.0.1 (and a unix socket), with the
// synthetic producer: bytes on the wire, flow control, authentication, shutdown.
#include "services/dataworker/grpc_data_service.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/rpc/auth.h"
#include "common/status/grpc_status.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/dataworker/dataworker_server.h"
#include "services/dataworker/stream_client.h"
#include "services/dataworker/synthetic_producer.h"
#include "services/dataworker/test_util.h"
#include "services/dataworker/wire.h"
#include "tests/test_cluster.h"

namespace vjepa::dataworker {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

TEST(WireTest, MessagesAreTheProtobufSerialisation) {
  for (int32_t sample : {0, 1, 300, -2}) {
    for (size_t size : {size_t{0}, size_t{5}, size_t{200000}}) {
      auto clip = std::make_shared<const std::string>(std::string(size, 'x') + "");
      v1::BatchMessage m;
      m.mutable_clip()->set_sample(sample);
      m.mutable_clip()->set_tokens(*clip);
      EXPECT_EQ(Flatten(ClipMessage(sample, clip)), m.SerializeAsString())
          << "sample " << sample << ", " << size << " bytes";
    }
  }
  ASSERT_OK_AND_ASSIGN(ProducedBatch batch, SyntheticProducer({}).Produce(3, 4));
  batch.header.set_job_id("j");
  batch.header.set_lease_id("l");
  v1::BatchMessage m;
  *m.mutable_header() = batch.header;
  EXPECT_EQ(Flatten(HeaderMessage(batch.header)), m.SerializeAsString());
}

class StreamBatchesTest : public ::testing::Test {
 protected:
  void StartServer(SyntheticOptions synthetic, int k = 2, const std::string& listen = "") {
    dir_.Write("tokens", testing::TestTokenFile());
    synthetic_ = synthetic;
    factory_ = std::make_shared<SyntheticFactory>(synthetic);
    DataworkerConfig config;
    config.listen = listen.empty() ? "127.0.0.1:0" : listen;
    config.auth_tokens = dir_.File("tokens");
    config.service.threads = 2;
    config.service.stream_buffer_batches = k;
    config.service.standalone = StandaloneJob{"job-a", spec::JobSpec{}, 1};
    config.stop_grace = absl::Seconds(2);
    ASSERT_OK_AND_ASSIGN(server_, DataworkerServer::Create(config, factory_));
    ASSERT_OK(server_->Start());
    address_ = listen.empty() ? absl::StrCat("127.0.0.1:", server_->BoundPort()) : listen;
    ASSERT_OK_AND_ASSIGN(channel_, DataChannel(address_));
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  static v1::StreamBatchesRequest Request(int64_t generation = 0, int64_t from = 0) {
    v1::StreamBatchesRequest r;
    r.set_job_id("job-a");
    r.set_generation(generation);
    r.set_from_global_index(from);
    return r;
  }
  void ExpectBatchIsTheProducers(const ReceivedBatch& got, int64_t g) {
    ASSERT_OK_AND_ASSIGN(ProducedBatch want, SyntheticProducer(synthetic_)
                                                 .Produce(g / synthetic_.batches_per_epoch,
                                                          g % synthetic_.batches_per_epoch));
    want.header.set_job_id("job-a");
    want.header.set_global_index(g);
    EXPECT_EQ(got.header.SerializeAsString(), want.header.SerializeAsString());
    ASSERT_EQ(got.clips.size(), want.clips.size());
    for (size_t c = 0; c < want.clips.size(); ++c) {
      EXPECT_TRUE(got.clips[c] == *want.clips[c]) << "clip " << c << " of g " << g;
    }
  }

  testing::ScratchDir dir_;
  SyntheticOptions synthetic_;
  std::shared_ptr<SyntheticFactory> factory_;
  std::unique_ptr<DataworkerServer> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(StreamBatchesTest, AClientReadsTheProducersBytes) {
  SyntheticOptions synthetic;
  synthetic.batch_size = 3;
  synthetic.num_tokens = 64;
  synthetic.token_bytes = 96;
  synthetic.batches_per_epoch = 4;
  StartServer(synthetic);
  BatchStreamReader reader(channel_, testing::kWorkerToken, Request(0, 2));
  for (int64_t g = 2; g < 7; ++g) {
    ASSERT_OK_AND_ASSIGN(ReceivedBatch batch, reader.Next());
    EXPECT_EQ(batch.header.global_index(), g);
    ExpectBatchIsTheProducers(batch, g);
  }
  reader.Cancel().IgnoreError();
  EXPECT_GE(MetricValue(server_->registry(), "vjepa_dataworker_batches_sent_total"), 4);
}

TEST_F(StreamBatchesTest, AUnixSocketServesToo) {
  StartServer(SyntheticOptions{}, 2, "unix:" + dir_.File("dw.sock"));
  EXPECT_EQ(server_->BoundPort(), 1);
  BatchStreamReader reader(channel_, testing::kAdminToken, Request());
  ASSERT_OK_AND_ASSIGN(ReceivedBatch batch, reader.Next());
  ExpectBatchIsTheProducers(batch, 0);
}

TEST_F(StreamBatchesTest, AConsumerThatStopsReadingKeepsServerMemoryBounded) {
  constexpr int kK = 2;
  SyntheticOptions synthetic;
  synthetic.batch_size = 4;
  synthetic.num_tokens = 1024;
  synthetic.token_bytes = 1024;  // 1 MiB clips, 4 MiB batches
  StartServer(synthetic, kK);
  auto reader = std::make_unique<BatchStreamReader>(channel_, testing::kWorkerToken, Request());
  constexpr int kRead = 2;
  for (int i = 0; i < kRead; ++i) ASSERT_OK(reader->Next().status());
  auto producer = factory_->producer("job-a");
  ASSERT_NE(producer, nullptr);
  // Beyond what the client read: K buffered, one being written, and what the transport holds
  // (HTTP/2 windows and socket buffers, a few MiB: at most 4 batches of 4 MiB here).
  const int64_t cap = kRead + kK + 1 + 4;
  EXPECT_FALSE(WaitUntil([&] { return producer->produced() > cap; }, absl::Seconds(3)))
      << producer->produced() << " batches produced for a client that read " << kRead;
  EXPECT_LE(server_->service().buffered_batches(), kK);
  EXPECT_GE(producer->produced(), kRead + kK);  // production did run ahead, up to the bound
  reader.reset();                               // cancels the call
  EXPECT_TRUE(WaitUntil([&] { return server_->service().active_streams() == 0; }));
}

TEST_F(StreamBatchesTest, EveryMethodNeedsAWorkerOrAdminToken) {
  StartServer(SyntheticOptions{});
  (void)v1::BatchMessage::descriptor();
  const auto* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("vjepa.v1.DataService");
  ASSERT_NE(service, nullptr);
  ASSERT_GE(service->method_count(), 1);
  for (int m = 0; m < service->method_count(); ++m) {
    const std::string method =
        absl::StrCat("/", service->full_name(), "/", service->method(m)->name());
    for (const std::string& token : {std::string(), std::string("not-a-known-token-xx")}) {
      grpc::GenericStub stub(channel_);
      grpc::CompletionQueue cq;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      if (!token.empty()) rpc::AttachToken(&ctx, token);
      v1::StreamBatchesRequest req = Request();
      grpc::Slice slice(req.SerializeAsString());
      grpc::ByteBuffer request(&slice, 1);
      void* tag;
      bool ok;
      auto call = stub.PrepareCall(&ctx, method, &cq);
      call->StartCall(reinterpret_cast<void*>(1));
      cq.Next(&tag, &ok);
      call->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
      cq.Next(&tag, &ok);
      grpc::ByteBuffer response;
      call->Read(&response, reinterpret_cast<void*>(3));
      cq.Next(&tag, &ok);
      EXPECT_FALSE(ok) << method << ": a message came without a valid token";
      grpc::Status status;
      call->Finish(&status, reinterpret_cast<void*>(4));
      while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
      }
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with token '" << token << "': " << status.error_message();
    }
  }
  // A user token is known but may not stream batches.
  BatchStreamReader user(channel_, testing::kAliceToken, Request());
  EXPECT_THAT(user.Next().status(), StatusIs(absl::StatusCode::kPermissionDenied, _));
  EXPECT_EQ(MetricValue(server_->registry(),
                        "vjepa_dataworker_rpc_handled_total{code=\"UNAUTHENTICATED\",method=\"/"
                        "vjepa.v1.DataService/StreamBatches\"}"),
            2);
}

TEST_F(StreamBatchesTest, StaleGenerationIsFailedPrecondition) {
  StartServer(SyntheticOptions{});
  BatchStreamReader gen1(channel_, testing::kWorkerToken, Request(/*generation=*/1));
  ASSERT_OK(gen1.Next().status());
  BatchStreamReader gen0(channel_, testing::kWorkerToken, Request(/*generation=*/0));
  EXPECT_THAT(gen0.Next().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));
}

TEST_F(StreamBatchesTest, StopEndsWaitingStreamsWithUnavailable) {
  SyntheticOptions synthetic;
  auto gate = std::make_shared<absl::Notification>();
  synthetic.fail = [gate](int64_t, int64_t b) {
    if (b >= 1) gate->WaitForNotification();  // the second batch never comes before Stop
    return absl::OkStatus();
  };
  StartServer(synthetic);
  BatchStreamReader reader(channel_, testing::kWorkerToken, Request());
  ASSERT_OK(reader.Next().status());
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(100));
    gate->Notify();  // lets the producers finish so that Stop can join them
    server_->Stop();
  });
  absl::StatusOr<ReceivedBatch> next = reader.Next();
  // Either the gate opened first and a batch arrived, or the stream ended as shutting down.
  while (next.ok()) next = reader.Next();
  EXPECT_THAT(next.status(), StatusIs(absl::StatusCode::kUnavailable, _));
  stopper.join();
}

}  // namespace
}  // namespace vjepa::dataworker
