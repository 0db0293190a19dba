#include "cli/vjepactl/health.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/vjepactl/commands.h"
#include "common/metrics/metrics.h"
#include "common/rpc/client.h"
#include "common/rpc/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vjepa/v1/job.grpc.pb.h"

namespace vjepa::vjepactl {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A port that nothing listens on: bound by the kernel's choice, then closed.
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A socket that listens but never answers (connections wait in its backlog); closed on destruction.
class SilentListener {
 public:
  SilentListener() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 4), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  }
  ~SilentListener() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  const int fd_;
  std::string address_;
};

std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  rpc::ClientOptions options;
  options.address = address;
  auto channel = rpc::MakeChannel(options);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return *channel;
}

TEST(HealthWire, EncodesTheRequest) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(EncodeHealthCheckRequest("vjepa.v1.JobService"),
            std::string("\x0a\x13") + "vjepa.v1.JobService");
  const std::string long_name(200, 'x');
  EXPECT_EQ(EncodeHealthCheckRequest(long_name).substr(0, 3), std::string("\x0a\xc8\x01"));
}

TEST(HealthWire, DecodesTheResponse) {
  EXPECT_EQ(*DecodeHealthCheckResponse(""), 0);
  EXPECT_EQ(*DecodeHealthCheckResponse("\x08\x01"), 1);
  EXPECT_EQ(*DecodeHealthCheckResponse("\x08\x02"), 2);
  // An unknown length-delimited field is skipped.
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x12\x02hi\x08\x01")), 1);
  EXPECT_FALSE(DecodeHealthCheckResponse("\x08").ok());
  EXPECT_FALSE(DecodeHealthCheckResponse("\x12\x05hi").ok());
}

class GrpcHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<rpc::RpcServer>(rpc::ServerOptions{},
                                               std::vector<grpc::Service*>{&service_});
    ASSERT_TRUE(server_->Start().ok());
    address_ = absl::StrCat("127.0.0.1:", server_->BoundPort());
  }
  void TearDown() override { server_->Stop(absl::ZeroDuration()); }

  v1::JobService::Service service_;  // every method UNIMPLEMENTED; health needs one service
  std::unique_ptr<rpc::RpcServer> server_;
  std::string address_;
};

TEST_F(GrpcHealthTest, ServingServerExitsZero) {
  std::ostringstream out, err;
  HealthOptions options{address_, "", absl::Seconds(5)};
  EXPECT_EQ(GrpcHealth(options, Channel(address_), out, err), kExitOk) << err.str();
  EXPECT_EQ(out.str(), "SERVING\n");
  EXPECT_EQ(err.str(), "");
}

TEST_F(GrpcHealthTest, UnknownServiceExitsOne) {
  std::ostringstream out, err;
  HealthOptions options{address_, "no.such.Service", absl::Seconds(5)};
  EXPECT_EQ(GrpcHealth(options, Channel(address_), out, err), kExitError);
  EXPECT_THAT(err.str(), StartsWith("vjepactl: NOT_FOUND: "));
  EXPECT_THAT(err.str(), HasSubstr("no.such.Service: unknown service"));
}

TEST(GrpcHealth, UnreachableExitsOneWithinTheTimeout) {
  const std::string address = absl::StrCat("127.0.0.1:", ClosedPort());
  std::ostringstream out, err;
  HealthOptions options{address, "", absl::Seconds(2)};
  const absl::Time start = absl::Now();
  EXPECT_EQ(GrpcHealth(options, Channel(address), out, err), kExitError);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(out.str(), "");
  EXPECT_THAT(err.str(), StartsWith("vjepactl: "));
  EXPECT_THAT(err.str(), HasSubstr(address));
}

TEST(GrpcHealth, SilentServerExitsOneAfterTheTimeout) {
  SilentListener silent;
  std::ostringstream out, err;
  const absl::Time start = absl::Now();
  EXPECT_EQ(GrpcHealth({silent.address(), "", absl::Milliseconds(500)}, Channel(silent.address()),
                       out, err),
            kExitError);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_THAT(err.str(), StartsWith("vjepactl: "));
  EXPECT_THAT(err.str(), HasSubstr(silent.address()));
}

TEST(HttpHealth, SilentServerExitsOneAfterTheTimeout) {
  SilentListener silent;
  std::ostringstream out, err;
  const absl::Time start = absl::Now();
  EXPECT_EQ(HttpHealth({silent.address(), "", absl::Milliseconds(500)}, out, err), kExitError);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_THAT(err.str(), StartsWith("vjepactl: DEADLINE_EXCEEDED: " + silent.address()));
}

TEST(HttpHealth, MetricsEndpointExitsZero) {
  auto exposer = metrics::Exposer::Start("127.0.0.1:0", std::make_shared<metrics::Registry>());
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*exposer)->BoundPort());
  std::ostringstream out, err;
  EXPECT_EQ(HttpHealth({address, "", absl::Seconds(5)}, out, err), kExitOk) << err.str();
  EXPECT_EQ(out.str(), "SERVING\n");
}

TEST(HttpHealth, ClosedPortExitsOne) {
  const std::string address = absl::StrCat("127.0.0.1:", ClosedPort());
  std::ostringstream out, err;
  EXPECT_EQ(HttpHealth({address, "", absl::Seconds(2)}, out, err), kExitError);
  EXPECT_THAT(err.str(), StartsWith("vjepactl: UNAVAILABLE: " + address + ": connect: "));
}

// A server that answers every connection with `answer` and closes it.
TEST(HttpHealth, OtherStatusExitsOne) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread server([listener] {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    char buffer[256];
    (void)!recv(fd, buffer, sizeof(buffer), 0);
    const std::string answer = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    (void)!send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    close(fd);
  });
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  std::ostringstream out, err;
  EXPECT_EQ(HttpHealth({address, "", absl::Seconds(5)}, out, err), kExitError);
  EXPECT_THAT(out.str(), StartsWith("NOT_SERVING"));
  EXPECT_THAT(out.str(), HasSubstr("503"));
  server.join();
  close(listener);
}

}  // namespace
}  // namespace vjepa::vjepactl
