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

// A plain HTTP/1.0 GET over loopback.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

TEST(Metrics, ExposerServesTheRegistryOnAPickedPort) {
  auto registry = std::make_shared<Registry>();
  AddCounter(*registry, "vjepa_test_things_total", "Things.").Add({{"kind", "a"}}).Increment(3);
  AddHistogram(*registry, "vjepa_test_wait_seconds", "Waits.")
      .Add({}, LatencyBuckets())
      .Observe(0.01);
  ASSERT_OK_AND_ASSIGN(auto exposer, Exposer::Start("127.0.0.1:0", registry));
  ASSERT_GT(exposer->BoundPort(), 0);
  std::string body = HttpGet(exposer->BoundPort(), "/metrics");
  EXPECT_THAT(body, HasSubstr("vjepa_test_things_total{kind=\"a\"} 3"));
  EXPECT_THAT(body, HasSubstr("vjepa_test_wait_seconds_count 1"));
  EXPECT_THAT(Render(*registry), HasSubstr("vjepa_test_things_total{kind=\"a\"} 3"));
}

TEST(Metrics, ExposerReportsABadAddress) {
  auto registry = std::make_shared<Registry>();
  EXPECT_THAT(Exposer::Start("127.0.0.1:notaport", registry),
              vjepa::testing::StatusIs(absl::StatusCode::kUnavailable,
                                       HasSubstr("metrics: cannot listen on 127.0.0.1:notaport")));
}

}  // namespace
}  // namespace vjepa::metrics
