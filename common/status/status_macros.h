// RETURN_IF_ERROR / ASSIGN_OR_RETURN: the status macros that Debian's Abseil (20220623) lacks.
#ifndef VJEPA_COMMON_STATUS_STATUS_MACROS_H_
#define VJEPA_COMMON_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status of `expr` from the enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                                                \
  do {                                                                       \
    ::absl::Status _vjepa_status = ::vjepa::status_internal::AsStatus(expr); \
    if (!_vjepa_status.ok()) return _vjepa_status;                           \
  } while (0)

#define VJEPA_STATUS_CONCAT_INNER(a, b) a##b
#define VJEPA_STATUS_CONCAT(a, b) VJEPA_STATUS_CONCAT_INNER(a, b)

// ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; on error returns its status,
// otherwise moves the value into `lhs` (which may be a declaration: `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  VJEPA_ASSIGN_OR_RETURN_IMPL(VJEPA_STATUS_CONCAT(_vjepa_statusor_, __LINE__), lhs, expr)

#define VJEPA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()

namespace vjepa::status_internal {
inline const ::absl::Status& AsStatus(const ::absl::Status& s) { return s; }
template <typename T>
const ::absl::Status& AsStatus(const ::absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace vjepa::status_internal

#endif  // VJEPA_COMMON_STATUS_STATUS_MACROS_H_
