#include "common/rpc/server.h"

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/rpc/client.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "vjepa/v1/job.grpc.pb.h"

namespace vjepa::rpc {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

// The health service needs at least one synchronous service beside it; every method of this one
// answers UNIMPLEMENTED.
vjepa::v1::JobService::Service* AnyService() {
  static auto* service = new vjepa::v1::JobService::Service;
  return service;
}

// grpc.health.v1.Health/Check with an empty request, sent as raw bytes; returns the response's
// bytes ("\x08\x01" is status SERVING) or the call's error.
absl::StatusOr<std::string> HealthCheck(std::shared_ptr<grpc::Channel> channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request, response;
  grpc::Slice empty;
  request = grpc::ByteBuffer(&empty, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> l(mu);
                   status = s;
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  if (!status.ok())
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

TEST(RpcServer, BindsPortZeroServesHealthAndCountsRpcs) {
  auto registry = std::make_shared<metrics::Registry>();
  ServerOptions options;
  options.service_name = "test";
  options.registry = registry;
  RpcServer server(options, {AnyService()});
  ASSERT_OK(server.Start());
  ASSERT_GT(server.BoundPort(), 0);
  ASSERT_OK_AND_ASSIGN(auto channel, MakeChannel({absl::StrCat("127.0.0.1:", server.BoundPort())}));
  ASSERT_OK_AND_ASSIGN(std::string reply, HealthCheck(channel));
  EXPECT_EQ(reply, std::string("\x08\x01"));
  EXPECT_THAT(
      metrics::Render(*registry),
      HasSubstr(
          "vjepa_test_rpc_handled_total{code=\"OK\",method=\"/grpc.health.v1.Health/Check\"} 1"));
  server.Stop();
  server.Stop();  // idempotent
}

TEST(RpcServer, RejectsBadListenAddresses) {
  RpcServer bad({"localhost"}, {AnyService()});
  EXPECT_THAT(bad.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("--listen: must be HOST:PORT")));
  RpcServer first({"127.0.0.1:0"}, {AnyService()});
  ASSERT_OK(first.Start());
  RpcServer taken({absl::StrCat("127.0.0.1:", first.BoundPort())}, {AnyService()});
  EXPECT_THAT(taken.Start(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot listen")));
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(vjepa::testing::MakeTestCertificates(dir_.path()))
        << "openssl failed; see " << dir_.File("openssl.log");
  }
  std::string F(const char* name) { return dir_.File(name); }
  vjepa::testing::ScratchDir dir_;
};

TEST_F(TlsTest, ServesTlsAndRequiresClientCertificatesWithAClientCa) {
  ServerOptions options;
  options.tls = {F("server.pem"), F("server.key"), ""};
  RpcServer server(options, {AnyService()});
  ASSERT_OK(server.Start());
  const std::string address = absl::StrCat("127.0.0.1:", server.BoundPort());

  ClientOptions tls_client{address};
  tls_client.tls.ca = F("ca.pem");
  ASSERT_OK_AND_ASSIGN(auto channel, MakeChannel(tls_client));
  EXPECT_OK(HealthCheck(channel));
  ASSERT_OK_AND_ASSIGN(auto plain, MakeChannel({address}));
  EXPECT_THAT(HealthCheck(plain), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));

  ServerOptions mtls;
  mtls.tls = {F("server.pem"), F("server.key"), F("ca.pem")};
  RpcServer mutual(mtls, {AnyService()});
  ASSERT_OK(mutual.Start());
  ClientOptions no_cert{absl::StrCat("127.0.0.1:", mutual.BoundPort())};
  no_cert.tls.ca = F("ca.pem");
  ASSERT_OK_AND_ASSIGN(auto anonymous, MakeChannel(no_cert));
  EXPECT_THAT(HealthCheck(anonymous), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  ClientOptions with_cert = no_cert;
  with_cert.tls.cert = F("client.pem");
  with_cert.tls.key = F("client.key");
  ASSERT_OK_AND_ASSIGN(auto authenticated, MakeChannel(with_cert));
  EXPECT_OK(HealthCheck(authenticated));
}

TEST_F(TlsTest, ReportsMissingAndBadFiles) {
  ServerOptions only_cert;
  only_cert.tls.cert = F("server.pem");
  EXPECT_THAT(
      RpcServer(only_cert, {AnyService()}).Start(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("both --tls_cert and --tls_key")));
  ServerOptions missing;
  missing.tls = {F("nope.pem"), F("server.key"), ""};
  EXPECT_THAT(RpcServer(missing, {AnyService()}).Start(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.pem: cannot open")));
  ServerOptions not_pem;
  not_pem.tls = {F("san.ext"), F("server.key"), ""};
  EXPECT_THAT(RpcServer(not_pem, {AnyService()}).Start(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("san.ext: not a PEM file")));
}

}  // namespace
}  // namespace vjepa::rpc
