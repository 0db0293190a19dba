#include "services/dataworker/video/bad_video.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace vjepa::dataworker {
namespace {

// The payload type URL under which BadVideo() records the reason (its value is the reason name).
constexpr absl::string_view kReasonPayload = "type.vjepa.dev/vjepa.dataworker.BadVideoReason";

absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

std::string_view BadVideoReasonName(BadVideoReason reason) {
  switch (reason) {
    case BadVideoReason::kMissing:
      return "missing";
    case BadVideoReason::kEmpty:
      return "empty";
    case BadVideoReason::kTruncated:
      return "truncated";
    case BadVideoReason::kNotAContainer:
      return "not_a_container";
    case BadVideoReason::kNoVideoStream:
      return "no_video_stream";
    case BadVideoReason::kUnsupportedCodec:
      return "unsupported_codec";
    case BadVideoReason::kTooLarge:
      return "too_large";
    case BadVideoReason::kDecodeError:
      return "decode_error";
    case BadVideoReason::kNoFrames:
      return "no_frames";
    case BadVideoReason::kPathRefused:
      return "path_refused";
  }
  return "unknown";
}

const std::vector<BadVideoReason>& AllBadVideoReasons() {
  static const auto* const kAll = new std::vector<BadVideoReason>{
      BadVideoReason::kMissing,       BadVideoReason::kEmpty,
      BadVideoReason::kTruncated,     BadVideoReason::kNotAContainer,
      BadVideoReason::kNoVideoStream, BadVideoReason::kUnsupportedCodec,
      BadVideoReason::kTooLarge,      BadVideoReason::kDecodeError,
      BadVideoReason::kNoFrames,      BadVideoReason::kPathRefused,
  };
  return *kAll;
}

absl::Status BadVideo(BadVideoReason reason, std::string_view path, std::string_view detail) {
  const std::string_view name = BadVideoReasonName(reason);
  std::string message = absl::StrCat(ToAbsl(path), ": ", ToAbsl(name));
  if (!detail.empty()) absl::StrAppend(&message, ": ", ToAbsl(detail));
  absl::StatusCode code = absl::StatusCode::kFailedPrecondition;
  if (reason == BadVideoReason::kMissing) code = absl::StatusCode::kNotFound;
  if (reason == BadVideoReason::kPathRefused) code = absl::StatusCode::kPermissionDenied;
  absl::Status status(code, message);
  status.SetPayload(kReasonPayload, absl::Cord(ToAbsl(name)));
  return status;
}

std::optional<BadVideoReason> BadVideoReasonOf(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  const absl::optional<absl::Cord> payload = status.GetPayload(kReasonPayload);
  if (!payload.has_value()) return std::nullopt;
  const std::string name(*payload);
  for (BadVideoReason reason : AllBadVideoReasons()) {
    if (BadVideoReasonName(reason) == name) return reason;
  }
  return std::nullopt;
}

std::string BadVideoDetail(const absl::Status& status) {
  const std::string message(status.message());
  const std::optional<BadVideoReason> reason = BadVideoReasonOf(status);
  if (!reason.has_value()) return message;
  const std::string marker = absl::StrCat(": ", std::string(BadVideoReasonName(*reason)), ": ");
  const size_t at = message.find(marker);
  return at == std::string::npos ? message : message.substr(at + marker.size());
}

}  // namespace vjepa::dataworker
