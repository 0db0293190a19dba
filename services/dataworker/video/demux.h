// The demuxer side of the video reader: opening a file through our own file-only AVIOContext
// with bounded probing, choosing the video stream, its display rotation, and the demux-only pass
// that builds the frame index. Internal to the reader.
#ifndef VJEPA_SERVICES_DATAWORKER_VIDEO_DEMUX_H_
#define VJEPA_SERVICES_DATAWORKER_VIDEO_DEMUX_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/dataworker/video/frame_index.h"
#include "services/dataworker/video/video_reader.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

namespace vjepa::dataworker {

// Consecutive EAGAINs from av_read_frame before giving up.
inline constexpr int kMaxAgain = 1000;

struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct CodecFree {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFree>;

std::string AvError(int err);

// "<path>: <what> ran past its deadline" (DEADLINE_EXCEEDED, not a bad video).
absl::Status DeadlineError(const std::string& path, std::string_view what);

// The wall-clock bound on blocking libavformat calls (AVIOInterruptCB).
struct Interrupt {
  absl::Time deadline = absl::InfiniteFuture();
  bool fired = false;

  static int Callback(void* opaque) {
    auto* self = static_cast<Interrupt*>(opaque);
    if (self->deadline == absl::InfiniteFuture() || absl::Now() <= self->deadline) return 0;
    self->fired = true;
    return 1;
  }
};

// One open file: our own AVIOContext (file protocol only) and the format context on it.
struct Demuxer {
  ~Demuxer() {
    avformat_close_input(&fmt);
    avio_closep(&pb);
  }
  AVFormatContext* fmt = nullptr;
  AVIOContext* pb = nullptr;
};

// Opens `path` with the demuxer `known` (probing the contents when null) and, when
// `probe_streams` or the format declares its streams only in the packets, probes the streams'
// codec parameters. Demuxers cannot open further files. `interrupt` must outlive the result.
absl::StatusOr<std::unique_ptr<Demuxer>> OpenDemuxer(const std::string& path,
                                                     const ReaderLimits& limits,
                                                     Interrupt* interrupt,
                                                     const AVInputFormat* known,
                                                     bool probe_streams);

// The best video stream that is not a cover picture, and its decoder.
absl::StatusOr<std::pair<int, const AVCodec*>> SelectStream(AVFormatContext* fmt,
                                                            const std::string& path);

// Clockwise degrees that turn the coded picture into the display (as the ffmpeg CLI's
// autorotate): 0, 90, 180 or 270.
int DisplayRotation(const AVStream* st);

// The demux-only pass over stream `stream`: its frame index (without the format name and codec
// parameters), or why the file is bad.
absl::StatusOr<FrameIndex> DemuxPass(AVFormatContext* fmt, int stream, const ReaderLimits& limits,
                                     int64_t file_bytes, const Interrupt& interrupt,
                                     const std::string& path);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_VIDEO_DEMUX_H_
