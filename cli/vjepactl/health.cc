#include "cli/vjepactl/health.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <ostream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/vjepactl/commands.h"
#include "common/status/grpc_status.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"

namespace vjepa::vjepactl {
namespace {

constexpr const char* kStatusNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};

// Reads a base-128 varint at bytes[*pos]; advances *pos.
bool ReadVarint(absl::string_view bytes, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *pos < bytes.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(bytes[(*pos)++]);
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void WriteVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// The call itself: Check with `request` bytes, the response's bytes or the call's error.
absl::StatusOr<std::string> CallCheck(const std::shared_ptr<grpc::Channel>& channel,
                                      const std::string& request_bytes, absl::Duration timeout) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = std::move(s);
                   done = true;
                   cv.notify_all();
                 });
  {
    // The context's deadline ends the call, so this wait is bounded.
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("cannot read the health answer");
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes;
}

// A socket connected to host:port, or the reason it is not, within `deadline`.
absl::StatusOr<int> Connect(const std::string& address, absl::Time deadline) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(absl::StrCat(address, ": expected HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat(address, ": ", gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError(absl::StrCat(address, ": no address"));
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int error = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int wait_ms = static_cast<int>(
            std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
        const int ready = poll(&p, 1, wait_ms);
        socklen_t len = sizeof(error);
        if (ready == 1) {
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        } else {
          error = ETIMEDOUT;
        }
      }
    }
    if (error == 0) {
      freeaddrinfo(found);
      return fd;
    }
    close(fd);
    last = absl::UnavailableError(absl::StrCat(address, ": connect: ", std::strerror(error)));
  }
  freeaddrinfo(found);
  return last;
}

// Sends the request and reads the status line ("HTTP/1.x CODE ...") within `deadline`.
absl::StatusOr<int> HttpGetStatus(int fd, const std::string& address, absl::Time deadline) {
  const std::string request =
      absl::StrCat("GET /metrics HTTP/1.0\r\nHost: ", address, "\r\nConnection: close\r\n\r\n");
  size_t sent = 0;
  std::string head;
  while (true) {
    const int wait_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    pollfd p{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
    if (poll(&p, 1, wait_ms) != 1) {
      return absl::DeadlineExceededError(absl::StrCat(address, ": no HTTP answer in time"));
    }
    if (sent < request.size()) {
      const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return absl::UnavailableError(absl::StrCat(address, ": send: ", std::strerror(errno)));
      }
      if (n > 0) sent += static_cast<size_t>(n);
      continue;
    }
    char buffer[512];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      return absl::UnavailableError(absl::StrCat(address, ": recv: ", std::strerror(errno)));
    }
    if (n > 0) head.append(buffer, static_cast<size_t>(n));
    const size_t eol = head.find("\r\n");
    if (eol != std::string::npos || n == 0 || head.size() > 4096) {
      const std::string line = head.substr(0, eol);
      int code = 0;
      if (!absl::StartsWith(line, "HTTP/") || line.size() < 12 ||
          !absl::SimpleAtoi(line.substr(9, 3), &code)) {
        return absl::UnavailableError(
            absl::StrCat(address, ": not an HTTP answer: \"", line.substr(0, 80), "\""));
      }
      return code;
    }
  }
}

}  // namespace

std::string EncodeHealthCheckRequest(const std::string& service) {
  std::string bytes;
  if (service.empty()) return bytes;  // proto3 omits the default value
  bytes.push_back('\x0a');            // field 1, length-delimited
  WriteVarint(service.size(), &bytes);
  bytes += service;
  return bytes;
}

absl::StatusOr<int> DecodeHealthCheckResponse(absl::string_view bytes) {
  int status = 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t tag = 0, value = 0;
    if (!ReadVarint(bytes, &pos, &tag)) break;
    const uint64_t wire_type = tag & 7;
    if (wire_type == 0) {
      if (!ReadVarint(bytes, &pos, &value)) break;
      if (tag >> 3 == 1) status = static_cast<int>(value);
    } else if (wire_type == 2) {  // a field of a newer version: skip it
      if (!ReadVarint(bytes, &pos, &value) || value > bytes.size() - pos) break;
      pos += value;
    } else {
      break;
    }
    if (pos == bytes.size()) return status;
  }
  if (bytes.empty()) return status;
  return absl::InternalError("malformed grpc.health.v1.HealthCheckResponse");
}

int GrpcHealth(const HealthOptions& options, const std::shared_ptr<grpc::Channel>& channel,
               std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::string> bytes =
      CallCheck(channel, EncodeHealthCheckRequest(options.service), options.timeout);
  const std::string what = absl::StrCat(
      options.address, options.service.empty() ? "" : absl::StrCat(" service ", options.service));
  if (!bytes.ok()) {
    const absl::Status& s = bytes.status();
    if (absl::IsNotFound(s)) {
      return ReportError(absl::NotFoundError(absl::StrCat(what, ": unknown service")), err);
    }
    if (absl::IsDeadlineExceeded(s)) {
      return ReportError(absl::DeadlineExceededError(absl::StrCat(
                             what, ": no answer within ", absl::FormatDuration(options.timeout),
                             ": ", s.message())),
                         err);
    }
    return ReportError(absl::Status(s.code(), absl::StrCat(what, ": ", s.message())), err);
  }
  absl::StatusOr<int> status = DecodeHealthCheckResponse(*bytes);
  if (!status.ok()) {
    return ReportError(
        absl::Status(status.status().code(), absl::StrCat(what, ": ", status.status().message())),
        err);
  }
  const int n = *status;
  out << (n >= 0 && n < 4 ? kStatusNames[n] : absl::StrCat("STATUS_", n).c_str()) << "\n";
  return n == 1 ? kExitOk : kExitError;
}

int HttpHealth(const HealthOptions& options, std::ostream& out, std::ostream& err) {
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::StatusOr<int> fd = Connect(options.address, deadline);
  if (!fd.ok()) return ReportError(fd.status(), err);
  absl::StatusOr<int> code = HttpGetStatus(*fd, options.address, deadline);
  close(*fd);
  if (!code.ok()) return ReportError(code.status(), err);
  if (*code == 200) {
    out << "SERVING\n";
    return kExitOk;
  }
  out << "NOT_SERVING (http://" << options.address << "/metrics answered " << *code << ")\n";
  return kExitError;
}

}  // namespace vjepa::vjepactl
