#include "common/metrics/metrics.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "prometheus/text_serializer.h"

namespace vjepa::metrics {
namespace {

// How often the serving thread looks at the stop flag.
constexpr int kPollMillis = 100;
// A request head (request line and headers) larger than this is refused.
constexpr size_t kMaxRequestHead = 8192;
// A client has this long to send its request head, and to take the answer.
constexpr auto kClientDeadline = std::chrono::seconds(5);

absl::Status ListenError(const std::string& listen_address, const std::string& why) {
  return absl::UnavailableError(
      absl::StrCat("metrics: cannot listen on ", listen_address, ": ", why));
}

// Sends all of `data` before `deadline`; false if the peer went away or was too slow.
bool SendAll(int fd, absl::string_view data, std::chrono::steady_clock::time_point deadline,
             const std::atomic<bool>& stop) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (stop.load() || std::chrono::steady_clock::now() >= deadline) return false;
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, kPollMillis);
  }
  return true;
}

std::string Response(absl::string_view status, absl::string_view content_type,
                     absl::string_view body, absl::string_view extra_headers = "") {
  return absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\n", extra_headers,
                      "Connection: close\r\n\r\n", body);
}

}  // namespace

prometheus::Family<prometheus::Counter>& AddCounter(Registry& r, const std::string& name,
                                                    const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Gauge>& AddGauge(Registry& r, const std::string& name,
                                                const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Histogram>& AddHistogram(Registry& r, const std::string& name,
                                                        const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = [] {
    auto* b = new prometheus::Histogram::BucketBoundaries;
    for (double v = 0.001; v < 70; v *= 2) b->push_back(v);
    return b;
  }();
  return *buckets;
}

absl::StatusOr<std::unique_ptr<Exposer>> Exposer::Start(const std::string& listen_address,
                                                        std::shared_ptr<Registry> registry) {
  // HOST:PORT, HOST possibly a bracketed IPv6 literal or empty (all interfaces).
  const size_t colon = listen_address.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(listen_address).substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return ListenError(listen_address, "expected HOST:PORT with PORT in [0, 65535]");
  }
  std::string host = listen_address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addrs = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &addrs);
      rc != 0) {
    return ListenError(listen_address, gai_strerror(rc));
  }
  std::string why = "no address";
  int fd = -1;
  for (addrinfo* a = addrs; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 16) != 0) {
      why = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addrs);
  if (fd < 0) return ListenError(listen_address, why);

  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    why = std::strerror(errno);
    close(fd);
    return ListenError(listen_address, why);
  }
  const int bound_port = bound.ss_family == AF_INET6
                             ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                             : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<Exposer>(new Exposer(fd, bound_port, std::move(registry)));
}

Exposer::Exposer(int listen_fd, int port, std::shared_ptr<Registry> registry)
    : listen_fd_(listen_fd), port_(port), registry_(std::move(registry)) {
  thread_ = std::thread([this] { Serve(); });
}

Exposer::~Exposer() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
}

void Exposer::Serve() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    int ready = poll(&p, 1, kPollMillis);
    if (ready <= 0 || !(p.revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    HandleConnection(fd);
    close(fd);
  }
}

void Exposer::HandleConnection(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + kClientDeadline;
  // Read the request head: up to the blank line that ends the headers, bounded in size and time.
  std::string head;
  bool complete = false;
  char buf[2048];
  while (!complete && head.size() <= kMaxRequestHead) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      head.append(buf, static_cast<size_t>(n));
      complete =
          head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos;
      continue;
    }
    if (n == 0) break;  // The peer finished sending; answer what came, if it is a request line.
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;
    if (stop_.load() || std::chrono::steady_clock::now() >= deadline) return;
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, kPollMillis);
  }

  std::string response;
  const size_t eol = head.find('\n');
  if (head.size() > kMaxRequestHead && (!complete || eol == std::string::npos)) {
    response = Response("431 Request Header Fields Too Large", "text/plain", "request too large\n");
  } else if (eol == std::string::npos) {
    return;  // No request line at all.
  } else {
    // "METHOD TARGET VERSION"
    absl::string_view line = absl::string_view(head).substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == absl::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == absl::string_view::npos || sp2 == absl::string_view::npos) {
      response = Response("400 Bad Request", "text/plain", "bad request line\n");
    } else {
      const absl::string_view method = line.substr(0, sp1);
      absl::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
      path = path.substr(0, path.find('?'));
      if (method != "GET") {
        response = Response("405 Method Not Allowed", "text/plain", "only GET\n", "Allow: GET\r\n");
      } else if (path != "/metrics") {
        response = Response("404 Not Found", "text/plain", "not found; try /metrics\n");
      } else {
        std::string body;
        try {
          body = prometheus::TextSerializer().Serialize(registry_->Collect());
        } catch (const std::exception& e) {
          response = Response("500 Internal Server Error", "text/plain",
                              absl::StrCat("cannot render metrics: ", e.what(), "\n"));
        }
        if (response.empty()) response = Response("200 OK", "text/plain; version=0.0.4", body);
      }
    }
  }
  if (!SendAll(fd, response, deadline, stop_)) return;
  // Half-close and drain what the client still sends (bounded) so that close() sends FIN, not RST
  // that could discard the answer before the client reads it.
  shutdown(fd, SHUT_WR);
  const auto drain_deadline =
      std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
  for (size_t drained = 0; drained < 64 * 1024;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      drained += static_cast<size_t>(n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
    if (stop_.load() || std::chrono::steady_clock::now() >= drain_deadline) break;
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, kPollMillis);
  }
}

std::string Render(const Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace vjepa::metrics
