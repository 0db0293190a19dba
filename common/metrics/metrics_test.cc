#include "common/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// A plain HTTP/1.0 request over loopback; returns the whole answer ("" if it cannot connect).
std::string HttpRequest(int port, const std::string& method, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string req = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

std::string HttpGet(int port, const std::string& path) { return HttpRequest(port, "GET", path); }

TEST(Metrics, ExposerServesTheRegistryOnAPickedPort) {
  auto registry = std::make_shared<Registry>();
  AddCounter(*registry, "vjepa_test_things_total", "Things.").Add({{"kind", "a"}}).Increment(3);
  AddHistogram(*registry, "vjepa_test_wait_seconds", "Waits.")
      .Add({}, LatencyBuckets())
      .Observe(0.01);
  ASSERT_OK_AND_ASSIGN(auto exposer, Exposer::Start("127.0.0.1:0", registry));
  ASSERT_GT(exposer->BoundPort(), 0);
  std::string body = HttpGet(exposer->BoundPort(), "/metrics");
  EXPECT_THAT(body, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(body, HasSubstr("Content-Type: text/plain; version=0.0.4\r\n"));
  EXPECT_THAT(body, HasSubstr("vjepa_test_things_total{kind=\"a\"} 3"));
  EXPECT_THAT(body, HasSubstr("vjepa_test_wait_seconds_count 1"));
  EXPECT_THAT(Render(*registry), HasSubstr("vjepa_test_things_total{kind=\"a\"} 3"));
}

TEST(Metrics, ExposerAnswersOtherPathsAndMethodsAndFollowsTheRegistry) {
  auto registry = std::make_shared<Registry>();
  auto& counter = AddCounter(*registry, "vjepa_test_hits_total", "Hits.").Add({});
  ASSERT_OK_AND_ASSIGN(auto exposer, Exposer::Start("127.0.0.1:0", registry));
  const int port = exposer->BoundPort();
  EXPECT_THAT(HttpGet(port, "/nope"), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(HttpRequest(port, "POST", "/metrics"),
              StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(HttpGet(port, "/metrics?x=1"), HasSubstr("vjepa_test_hits_total 0"));
  counter.Increment(2);
  EXPECT_THAT(HttpGet(port, "/metrics"), HasSubstr("vjepa_test_hits_total 2"));

  // A client that connects and sends nothing does not keep the next one waiting forever: the
  // server gives up on it after its read deadline.
  int idle = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_THAT(HttpGet(port, "/metrics"), HasSubstr("vjepa_test_hits_total 2"));
  close(idle);

  // Stopping closes the listening socket: nothing answers on the port afterwards.
  exposer.reset();
  EXPECT_THAT(HttpGet(port, "/metrics"), IsEmpty());
}

TEST(Metrics, ExposerStopsWhileAClientIsIdle) {
  auto registry = std::make_shared<Registry>();
  ASSERT_OK_AND_ASSIGN(auto exposer, Exposer::Start("127.0.0.1:0", registry));
  int idle = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(exposer->BoundPort());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  exposer.reset();  // Must return (join) without waiting for the idle client.
  close(idle);
}

TEST(Metrics, ExposerReportsABadAddress) {
  auto registry = std::make_shared<Registry>();
  EXPECT_THAT(Exposer::Start("127.0.0.1:notaport", registry),
              vjepa::testing::StatusIs(absl::StatusCode::kUnavailable,
                                       HasSubstr("metrics: cannot listen on 127.0.0.1:notaport")));
}

}  // namespace
}  // namespace vjepa::metrics
