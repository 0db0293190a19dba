// The core's own status type: the LibTorch core (model, vjepa, masking) depends on nothing but
// LibTorch and the standard library, so it cannot use absl::Status. Services convert with
// ToAbslStatus() at their boundary (common/core/absl_status.h is not part of the core).
#ifndef VJEPA_COMMON_CORE_STATUS_H_
#define VJEPA_COMMON_CORE_STATUS_H_

#include <optional>
#include <ostream>
#include <string>
#include <utility>

namespace vjepa::core {

// Codes share numbers with absl::StatusCode and grpc::StatusCode.
enum class Code : int {
  kOk = 0,
  kInvalidArgument = 3,
  kNotFound = 5,
  kFailedPrecondition = 9,
  kOutOfRange = 11,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status InternalError(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status DataLossError(std::string m) { return {Code::kDataLoss, std::move(m)}; }

inline const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case Code::kOutOfRange:
      return "OUT_OF_RANGE";
    case Code::kInternal:
      return "INTERNAL";
    case Code::kUnavailable:
      return "UNAVAILABLE";
    case Code::kDataLoss:
      return "DATA_LOSS";
  }
  return "UNKNOWN";
}

inline std::string Status::ToString() const {
  return ok() ? "OK" : std::string(CodeName(code_)) + ": " + message_;
}
inline std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

// A value or the error that prevented it.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : value_(std::move(value)) {}          // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace vjepa::core

#define VJEPA_CORE_CONCAT_INNER(a, b) a##b
#define VJEPA_CORE_CONCAT(a, b) VJEPA_CORE_CONCAT_INNER(a, b)

// The core's spelling of RETURN_IF_ERROR / ASSIGN_OR_RETURN (the service macros need absl).
#define CORE_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::vjepa::core::Status _core_status = (expr); \
    if (!_core_status.ok()) return _core_status; \
  } while (0)

#define CORE_ASSIGN_OR_RETURN(lhs, expr) \
  CORE_ASSIGN_OR_RETURN_IMPL(VJEPA_CORE_CONCAT(_core_statusor_, __LINE__), lhs, expr)
#define CORE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#endif  // VJEPA_COMMON_CORE_STATUS_H_
