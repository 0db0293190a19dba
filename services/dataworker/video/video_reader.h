// Reads frames of one video file with libavformat/libavcodec: a size- and time-bounded probe,
// the best video stream, a demux-only pass that counts the frames (the container's duration is
// never trusted), and decoding of just the frames a clip needs.
//
// Frames are indexed 0..frames-1 in presentation order: frame i is the video packet with the
// i-th smallest presentation timestamp found by the demux pass. A frame is found by seeking to
// the key frame at or before its timestamp and decoding forward, which also handles variable
// frame rates. Rotation metadata (display matrix) is applied: widths, heights and boxes are in
// display orientation.
#ifndef VJEPA_SERVICES_DATAWORKER_VIDEO_VIDEO_READER_H_
#define VJEPA_SERVICES_DATAWORKER_VIDEO_VIDEO_READER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace cv {
class Mat;
}

namespace vjepa::dataworker {

class FrameIndexCache;

// Every bound on what comes from a file. Exceeding a size bound is BadVideoReason::kTooLarge.
struct ReaderLimits {
  int64_t max_file_bytes = int64_t{64} << 30;
  int max_width = 8192;  // coded and displayed
  int max_height = 8192;
  int64_t max_frames = 1'000'000;                    // video packets counted by the demux pass
  int64_t probe_bytes = 5'000'000;                   // libavformat probesize
  absl::Duration probe_duration = absl::Seconds(5);  // analyzeduration (media time)
  // Wall-clock bounds: past them the call returns DEADLINE_EXCEEDED (not a bad video).
  absl::Duration open_timeout = absl::Seconds(20);  // probe + demux pass
};

struct VideoInfo {
  std::string codec;         // decoder name, e.g. "h264", "vp9"
  std::string pixel_format;  // e.g. "yuv420p"
  int width = 0;             // displayed size (after rotation)
  int height = 0;
  int rotation = 0;        // clockwise degrees applied for display: 0, 90, 180 or 270
  int64_t frames = 0;      // video packets found by the demux pass
  double duration_s = 0;   // presentation span of the indexed frames (last - first + one frame)
  double fps = 0;          // frames / duration_s
  int64_t key_frames = 0;  // packets flagged as key frames
  int64_t file_bytes = 0;
};

// Time spent inside DecodeFrames, for the per-stage metrics. DecodeFrames adds to the fields.
struct DecodeStats {
  double demux_decode_s = 0;    // reading packets and decoding (not the sink's time)
  int64_t packets_sent = 0;     // packets given to the decoder
  int64_t frames_decoded = 0;   // frames the decoder produced
  int64_t frames_skipped = 0;   // non-reference frames discarded undecoded (skip_frame)
  int64_t frames_repeated = 0;  // needed frames the decoder never produced: the previous repeats
  int64_t seeks = 0;
};

// One decoded frame in the decoder's own pixel format; valid only during the sink call.
class FrameView {
 public:
  virtual ~FrameView() = default;
  virtual int width() const = 0;  // displayed size
  virtual int height() const = 0;
  // The pixels of the box (x, y, w, h in display coordinates, inside the frame) as RGB24
  // (CV_8UC3, h rows of w pixels, R first). Converts only (about) the box, not the whole frame.
  virtual absl::Status CropToRgb(int x, int y, int w, int h, cv::Mat* out) const = 0;
};

class VideoReader {
 public:
  // Opens `path`, probes it within `limits`, finds the best video stream and its decoder, and
  // indexes its frames (through `cache` when given: the demux pass runs once per file version).
  // Errors: BadVideo(...) for deterministic failures (bad_video.h); DEADLINE_EXCEEDED when the
  // open takes longer than limits.open_timeout.
  static absl::StatusOr<std::unique_ptr<VideoReader>> Open(const std::string& path,
                                                           const ReaderLimits& limits,
                                                           FrameIndexCache* cache = nullptr);
  virtual ~VideoReader() = default;

  virtual const VideoInfo& info() const = 0;

  using FrameSink = std::function<absl::Status(int64_t index, const FrameView& frame)>;
  // Decodes the frames `indices` (ascending, repeats allowed, each in [0, frames)) and calls
  // `sink` once per distinct index, in ascending order. Decodes only what those frames need:
  // seeks to the key frame before a frame when that is cheaper than decoding forward, and
  // discards non-reference frames it does not need undecoded. A needed frame the decoder never
  // produces (a packet without a picture, one before the first key frame) repeats the nearest
  // decoded frame before it (after it when there is none). A sink error stops decoding and
  // is returned. Errors: BadVideo(kDecodeError / kTruncated, ...) when a needed frame cannot be
  // decoded (deterministic); DEADLINE_EXCEEDED past `deadline`; INVALID_ARGUMENT for bad indices.
  // After an error the frames already given to the sink make a partial clip: drop it. The
  // reader stays usable.
  virtual absl::Status DecodeFrames(absl::Span<const int64_t> indices, const FrameSink& sink,
                                    absl::Time deadline, DecodeStats* stats = nullptr) = 0;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_VIDEO_VIDEO_READER_H_
