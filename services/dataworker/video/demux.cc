#include "services/dataworker/video/demux.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "services/dataworker/video/bad_video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/display.h>
#include <libavutil/rational.h>
}

namespace vjepa::dataworker {
namespace {

struct Dict {
  ~Dict() { av_dict_free(&d); }
  AVDictionary* d = nullptr;
};

// Demuxers that would open further files (playlists, references) are refused that.
int RefuseNestedOpen(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) {
  return AVERROR(EPERM);
}

bool IsAttachedPicture(const AVStream* st) {
  return (st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
}

double FrameSeconds(const AVStream* st) {
  for (AVRational rate : {st->avg_frame_rate, st->r_frame_rate}) {
    if (rate.num > 0 && rate.den > 0) return av_q2d(av_inv_q(rate));
  }
  return 0;
}

// Decoders that keep stream-level state from in-band data of the first key frame's packet
// (parameter sets, sequence headers, the encoder's identification that enables workarounds such
// as H.264's for old x264 4:4:4 streams): a decoder starting at a later key frame reads it first.
bool KeepsInBandState(AVCodecID id) {
  return id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_HEVC || id == AV_CODEC_ID_MPEG4 ||
         id == AV_CODEC_ID_MPEG1VIDEO || id == AV_CODEC_ID_MPEG2VIDEO;
}

}  // namespace

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(err, buf, sizeof(buf)) < 0) return absl::StrCat("error ", err);
  return buf;
}

absl::Status DeadlineError(const std::string& path, std::string_view what) {
  return absl::DeadlineExceededError(absl::StrCat(
      path, ": ", absl::string_view(what.data(), what.size()), " ran past its deadline"));
}

absl::StatusOr<std::unique_ptr<Demuxer>> OpenDemuxer(const std::string& path,
                                                     const ReaderLimits& limits,
                                                     Interrupt* interrupt,
                                                     const AVInputFormat* known,
                                                     bool probe_streams) {
  auto demuxer = std::make_unique<Demuxer>();
  const AVIOInterruptCB callback{&Interrupt::Callback, interrupt};
  Dict io_options;
  av_dict_set(&io_options.d, "protocol_whitelist", "file", 0);
  int r = avio_open2(&demuxer->pb, absl::StrCat("file:", path).c_str(), AVIO_FLAG_READ, &callback,
                     &io_options.d);
  if (r < 0) {
    if (interrupt->fired) return DeadlineError(path, "opening");
    if (r == AVERROR(ENOENT) || r == AVERROR(ENOTDIR)) {
      return BadVideo(BadVideoReason::kMissing, path, AvError(r));
    }
    return absl::UnavailableError(absl::StrCat(path, ": cannot open: ", AvError(r)));
  }
  const AVInputFormat* input = known;
  int score = AVPROBE_SCORE_MAX;
  if (input == nullptr) {
    r = av_probe_input_buffer2(demuxer->pb, &input, path.c_str(), nullptr, 0, 0);
    if (interrupt->fired) return DeadlineError(path, "probing");
    if (r < 0 || input == nullptr) {
      return BadVideo(BadVideoReason::kNotAContainer, path,
                      absl::StrCat("no demuxer recognises it (", AvError(r), ")"));
    }
    score = r;
  }
  demuxer->fmt = avformat_alloc_context();
  if (demuxer->fmt == nullptr) return absl::ResourceExhaustedError("avformat_alloc_context");
  AVFormatContext* fmt = demuxer->fmt;
  fmt->pb = demuxer->pb;
  fmt->interrupt_callback = callback;
  fmt->io_open = RefuseNestedOpen;
  fmt->probesize = std::max<int64_t>(limits.probe_bytes, 32);
  fmt->max_analyze_duration =
      std::max<int64_t>(absl::ToInt64Microseconds(limits.probe_duration), 0);
  fmt->skip_estimate_duration_from_pts = 1;
  r = avformat_open_input(&demuxer->fmt, path.c_str(), input, nullptr);
  if (r < 0) {
    if (interrupt->fired) return DeadlineError(path, "opening");
    if (r == AVERROR(ENOMEM)) return absl::ResourceExhaustedError(path + ": out of memory");
    // A format recognised by its contents whose header cannot be read ends early (an MP4 cut
    // before its moov box, a Matroska file cut inside its header: EIO); one guessed only from the
    // name is not that format at all.
    const BadVideoReason reason = score >= AVPROBE_SCORE_MAX / 4 ? BadVideoReason::kTruncated
                                                                 : BadVideoReason::kNotAContainer;
    return BadVideo(reason, path, absl::StrCat(input->name, " header: ", AvError(r)));
  }
  if (probe_streams || (demuxer->fmt->ctx_flags & AVFMTCTX_NOHEADER)) {
    // Failing to probe some stream is not fatal: what the video stream lacks shows below.
    avformat_find_stream_info(demuxer->fmt, nullptr);
    if (interrupt->fired) return DeadlineError(path, "probing");
  }
  return demuxer;
}

absl::StatusOr<std::pair<int, const AVCodec*>> SelectStream(AVFormatContext* fmt,
                                                            const std::string& path) {
  const AVCodec* decoder = nullptr;
  const int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
  if (best >= 0 && decoder != nullptr && !IsAttachedPicture(fmt->streams[best])) {
    return std::make_pair(best, decoder);
  }
  int undecodable = -1;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVStream* st = fmt->streams[i];
    if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO || IsAttachedPicture(st)) continue;
    if (const AVCodec* c = avcodec_find_decoder(st->codecpar->codec_id)) {
      return std::make_pair(static_cast<int>(i), c);
    }
    if (undecodable < 0) undecodable = static_cast<int>(i);
  }
  if (undecodable >= 0) {
    return BadVideo(BadVideoReason::kUnsupportedCodec, path,
                    absl::StrCat("no decoder for ",
                                 avcodec_get_name(fmt->streams[undecodable]->codecpar->codec_id)));
  }
  return BadVideo(BadVideoReason::kNoVideoStream, path,
                  absl::StrCat(fmt->nb_streams, " streams, none of them video"));
}

int DisplayRotation(const AVStream* st) {
  size_t size = 0;
  const uint8_t* data = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (data == nullptr || size < 9 * sizeof(int32_t)) return 0;
  const double angle = av_display_rotation_get(reinterpret_cast<const int32_t*>(data));
  if (std::isnan(angle)) return 0;
  const long degrees = ((-std::lround(angle)) % 360 + 360) % 360;
  return degrees % 90 == 0 ? static_cast<int>(degrees) : 0;
}

absl::StatusOr<FrameIndex> DemuxPass(AVFormatContext* fmt, int stream, const ReaderLimits& limits,
                                     int64_t file_bytes, const Interrupt& interrupt,
                                     const std::string& path) {
  PacketPtr pkt(av_packet_alloc());
  if (pkt == nullptr) return absl::ResourceExhaustedError("av_packet_alloc");
  std::vector<IndexedPacket> packets;
  std::string truncated;
  int32_t prime_packet = -1;
  bool first_key = true;
  int again = 0;
  while (true) {
    const int r = av_read_frame(fmt, pkt.get());
    if (r == AVERROR_EOF) break;
    if (interrupt.fired) return DeadlineError(path, "the demux pass");
    if (r == AVERROR(EAGAIN) && ++again < kMaxAgain) continue;
    if (r < 0) {
      if (avio_feof(fmt->pb)) {
        truncated = absl::StrCat("read error at the end after ", packets.size(), " packets");
        break;
      }
      return BadVideo(
          BadVideoReason::kDecodeError, path,
          absl::StrCat("demuxer error after packet ", packets.size(), ": ", AvError(r)));
    }
    again = 0;
    if (pkt->stream_index == stream) {
      if (static_cast<int64_t>(packets.size()) >= limits.max_frames) {
        return BadVideo(BadVideoReason::kTooLarge, path,
                        absl::StrCat("more than ", limits.max_frames, " frames"));
      }
      IndexedPacket p;
      p.pos = pkt->pos;
      p.pts = pkt->pts;
      p.dts = pkt->dts;
      p.size = pkt->size;
      p.frame = (pkt->flags & AV_PKT_FLAG_DISCARD) ? -1 : 0;
      p.key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
      if (p.key && first_key) {
        first_key = false;
        if (KeepsInBandState(fmt->streams[stream]->codecpar->codec_id)) {
          prime_packet = static_cast<int32_t>(packets.size());
        }
      }
      if (pkt->pos >= 0 && pkt->pos + pkt->size > file_bytes) {
        truncated = absl::StrCat("packet ", packets.size(), " runs past the end");
      }
      if ((pkt->flags & AV_PKT_FLAG_CORRUPT) && avio_feof(fmt->pb)) {
        truncated = absl::StrCat("packet ", packets.size(), " is cut short");
      }
      packets.push_back(p);
    }
    av_packet_unref(pkt.get());
  }
  // A sample table or cue index that points past the end of the file.
  AVStream* st = fmt->streams[stream];
  const int entries = avformat_index_get_entries_count(st);
  for (int i = 0; i < entries && truncated.empty(); ++i) {
    const AVIndexEntry* e = avformat_index_get_entry(st, i);
    if (e != nullptr && (e->pos >= file_bytes || e->pos + e->size > file_bytes)) {
      truncated = absl::StrCat("the index points past the end (entry ", i, " of ", entries, ")");
    }
  }
  if (!truncated.empty()) return BadVideo(BadVideoReason::kTruncated, path, truncated);
  if (packets.empty()) {
    return BadVideo(BadVideoReason::kNoFrames, path, "the video stream has no packets");
  }
  FrameIndex index = BuildFrameIndex(stream, st->time_base.num, st->time_base.den,
                                     std::move(packets), FrameSeconds(st));
  index.prime_packet = prime_packet;
  return index;
}

}  // namespace vjepa::dataworker
