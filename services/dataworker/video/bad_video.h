// Why a video file cannot be used. Only deterministic failures have a reason: they are
// quarantined and replaced inside a batch (docs/architecture.md §4). A failure that depends on
// load (a decode past its deadline) is DEADLINE_EXCEEDED without a reason and fails the lease.
#ifndef VJEPA_SERVICES_DATAWORKER_VIDEO_BAD_VIDEO_H_
#define VJEPA_SERVICES_DATAWORKER_VIDEO_BAD_VIDEO_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace vjepa::dataworker {

// The values are label values of vjepa_dataworker_bad_videos_total{reason}; never rename one.
enum class BadVideoReason {
  kMissing,           // "missing": no such file
  kEmpty,             // "empty": zero bytes
  kTruncated,         // "truncated": the container ends early or its index points past the end
  kNotAContainer,     // "not_a_container": no demuxer recognises the bytes
  kNoVideoStream,     // "no_video_stream": streams, but none of them video (or none at all)
  kUnsupportedCodec,  // "unsupported_codec": no decoder for the stream's codec
  kTooLarge,          // "too_large": frame dimensions, frame count or file size over the limits
  kDecodeError,       // "decode_error": the decoder fails at a packet the clip needs
  kNoFrames,          // "no_frames": a video stream without a single decodable frame
  kPathRefused,       // "path_refused": outside every data root (.., absolute, symlink escape)
};

std::string_view BadVideoReasonName(BadVideoReason reason);
// Every reason, in enum order (for pre-initialising metrics).
const std::vector<BadVideoReason>& AllBadVideoReasons();

// A status for a deterministic failure: FAILED_PRECONDITION (NOT_FOUND for kMissing,
// PERMISSION_DENIED for kPathRefused) with "<path>: <reason name>: <detail>" and the reason
// attached as a payload.
absl::Status BadVideo(BadVideoReason reason, std::string_view path, std::string_view detail);
// The reason attached by BadVideo(), if any.
std::optional<BadVideoReason> BadVideoReasonOf(const absl::Status& status);
// The <detail> of a BadVideo() status (its message without "<path>: <reason name>: "); the
// whole message of any other status.
std::string BadVideoDetail(const absl::Status& status);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_VIDEO_BAD_VIDEO_H_
