#include "services/dataworker/video/video_reader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/dataworker/video/bad_video.h"
#include "services/dataworker/video/demux.h"
#include "services/dataworker/video/frame_convert.h"
#include "services/dataworker/video/frame_index.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/pixdesc.h>
}

namespace vjepa::dataworker {
namespace {

// A gap between two needed stretches of packets is read through (demuxed, not decoded) when it
// is at most this long, and sought over otherwise.
constexpr int64_t kReadThroughBytes = int64_t{256} << 10;
constexpr int32_t kReadThroughPackets = 128;
// Packets read after a seek to find one that the index knows.
constexpr int kIdentifyPackets = 64;
// Timestamp seeks tried (each aiming earlier) before reopening the file.
constexpr int kSeekTries = 4;

void QuietLogsOnce() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

// Decoders that evaluate skip_frame for each packet as it is decoded, and for which
// AVDISCARD_NONREF drops only pictures that nothing references.
bool PerPacketSkipIsSafe(const AVCodec* decoder) {
  static constexpr const char* kNames[] = {
      "h264",      "mpeg1video", "mpeg2video", "mpeg4", "h263", "h263p", "flv",
      "msmpeg4v1", "msmpeg4v2",  "msmpeg4",    "wmv1",  "wmv2", "vp8"};
  for (const char* name : kNames) {
    if (std::strcmp(decoder->name, name) == 0) return true;
  }
  return false;
}

int64_t SeekTimestamp(const IndexedPacket& p) {
  if (p.pts != kNoTimestamp && p.dts != kNoTimestamp) return std::min(p.pts, p.dts);
  return p.pts != kNoTimestamp ? p.pts : p.dts;
}

class FfmpegVideoReader final : public VideoReader {
 public:
  FfmpegVideoReader(std::string path, const ReaderLimits& limits)
      : path_(std::move(path)), limits_(limits), converter_(path_) {}

  absl::Status Init(FrameIndexCache* cache);
  // Opens the file with what `cached` recorded (no probing); leaves index_ null when the file
  // does not match it.
  absl::Status OpenIndexed(std::shared_ptr<const FrameIndex> cached);
  // Frame sizes within the limits (coded and displayed).
  absl::Status CheckSize(const AVCodecParameters* params, int rotation) const;
  const VideoInfo& info() const override { return info_; }
  absl::Status DecodeFrames(absl::Span<const int64_t> indices, const FrameSink& sink,
                            absl::Time deadline, DecodeStats* stats) override;

 private:
  struct Segment {
    int32_t start;  // packets [start, end] in decode order
    int32_t end;
    size_t first;  // need[first, last)
    size_t last;
  };
  struct Run {  // one segment's decoding
    const std::vector<int64_t>* need;
    size_t next;  // the next needed frame to emit
    size_t last;
    int64_t last_index = -1;  // the latest frame the decoder produced (kept in last_)
    bool have_last = false;
    int64_t skip_sent = 0;     // unneeded frames sent with skip_frame set
    int64_t unneeded_out = 0;  // unneeded frames the decoder produced anyway
    int64_t emitted = 0;
  };

  absl::Status DecodeAll(const std::vector<int64_t>& need, const FrameSink& sink,
                         absl::Time deadline, DecodeStats* stats);
  absl::Status DecodeSegment(const Segment& seg, Run* run, const FrameSink& sink,
                             absl::Time deadline, DecodeStats* stats);
  absl::Status Receive(Run* run, const FrameSink& sink, DecodeStats* stats);
  // Sends the packet just read (ReadPacket(dp)) to the decoder, then takes what it gives back.
  absl::Status SendPacket(int32_t dp, Run* run, const FrameSink& sink, DecodeStats* stats);
  absl::Status Emit(int64_t index, const AVFrame* frame, const FrameSink& sink, Run* run);
  bool Needed(const Run& run, int64_t frame) const;

  // Gives a fresh decoder the in-band state of index_->prime_packet.
  absl::Status Prime(DecodeStats* stats);
  // Makes packet `k` (decode order) the next one ReadPacket returns.
  absl::Status PositionAt(int32_t k, DecodeStats* stats);
  // Seeks by timestamp to a landing at or before `k` and reads on to it; false when no seek
  // lands there.
  absl::StatusOr<bool> SeekTo(int32_t k, DecodeStats* stats);
  // After a seek: reads until a packet the index knows (stashed in pkt_); its position or -1.
  absl::StatusOr<int32_t> Identify();
  // Reopens the file at its start (keeps the current demuxer when that fails).
  absl::Status Rewind();
  // Reads and drops packets up to `k` (read_pos_ <= k).
  absl::Status SkipTo(int32_t k);
  // Reads packet `dp` (which must be read_pos_) into pkt_.
  absl::Status ReadPacket(int32_t dp);
  absl::Status ReadStreamPacket(int32_t dp);
  void DropStash();
  // After an error: no packet or frame held, the decoder flushed, the read position unknown.
  void Reset();
  absl::Status DecodeError(int32_t dp, std::string_view what, int err) const;

  const std::string path_;
  const ReaderLimits limits_;
  Interrupt interrupt_;
  std::unique_ptr<Demuxer> demuxer_;
  int stream_ = -1;
  CodecPtr codec_;
  std::shared_ptr<const FrameIndex> index_;
  VideoInfo info_;
  int coded_w_ = 0, coded_h_ = 0, rotation_ = 0;
  bool skip_allowed_ = false;
  bool primed_ = false;           // the decoder has seen index_->prime_packet
  bool sequential_only_ = false;  // seeks by timestamp did not line up with the index
  bool desync_ = false;           // the demuxer returned a packet the index does not expect
  int64_t read_pos_ = -1;         // decode position of the next packet read; -1 unknown
  PacketPtr pkt_;
  bool stashed_ = false;  // pkt_ holds packet stash_dp_, read but not yet consumed
  int32_t stash_dp_ = -1;
  FramePtr frame_, last_;
  RgbConverter converter_;
  absl::Duration sink_time_;
};

absl::Status FfmpegVideoReader::Init(FrameIndexCache* cache) {
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) {
    const int err = errno;
    if (err == EIO || err == ENOMEM || err == EOVERFLOW) {
      return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(err)));
    }
    return BadVideo(BadVideoReason::kMissing, path_, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    return BadVideo(BadVideoReason::kNotAContainer, path_, "not a regular file");
  }
  info_.file_bytes = st.st_size;
  if (st.st_size == 0) return BadVideo(BadVideoReason::kEmpty, path_, "");
  if (st.st_size > limits_.max_file_bytes) {
    return BadVideo(BadVideoReason::kTooLarge, path_,
                    absl::StrCat(st.st_size, " bytes, more than ", limits_.max_file_bytes));
  }
  if (access(path_.c_str(), R_OK) != 0) {
    return BadVideo(BadVideoReason::kMissing, path_, std::strerror(errno));
  }

  FileVersion version;
  if (cache != nullptr) {
    char* real = realpath(path_.c_str(), nullptr);
    version.path = real != nullptr ? real : path_;
    std::free(real);
    version.size = st.st_size;
    version.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  interrupt_.deadline = absl::Now() + limits_.open_timeout;
  interrupt_.fired = false;
  if (cache != nullptr) {
    if (std::shared_ptr<const FrameIndex> cached = cache->Lookup(version)) {
      RETURN_IF_ERROR(OpenIndexed(std::move(cached)));
    }
  }
  if (index_ == nullptr) {
    ASSIGN_OR_RETURN(demuxer_, OpenDemuxer(path_, limits_, &interrupt_, nullptr, true));
    AVFormatContext* fmt = demuxer_->fmt;
    ASSIGN_OR_RETURN(const auto selected, SelectStream(fmt, path_));
    stream_ = selected.first;
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
      if (static_cast<int>(i) != stream_) fmt->streams[i]->discard = AVDISCARD_ALL;
    }
    // Checked before the demux pass, which reads the whole file.
    RETURN_IF_ERROR(
        CheckSize(fmt->streams[stream_]->codecpar, DisplayRotation(fmt->streams[stream_])));
    AVCodecParameters* params = avcodec_parameters_alloc();
    if (params == nullptr) return absl::ResourceExhaustedError("avcodec_parameters_alloc");
    std::shared_ptr<const AVCodecParameters> shared(
        params, [](AVCodecParameters* p) { avcodec_parameters_free(&p); });
    if (avcodec_parameters_copy(params, fmt->streams[stream_]->codecpar) < 0) {
      return absl::ResourceExhaustedError("avcodec_parameters_copy");
    }
    ASSIGN_OR_RETURN(FrameIndex built,
                     DemuxPass(fmt, stream_, limits_, st.st_size, interrupt_, path_));
    built.format_name = fmt->iformat->name;
    built.codec_params = std::move(shared);
    index_ = std::make_shared<const FrameIndex>(std::move(built));
    if (cache != nullptr) cache->Insert(version, index_);
    read_pos_ = -1;  // at the end
  }
  interrupt_.deadline = absl::InfiniteFuture();
  if (index_->frames() == 0) {
    return BadVideo(BadVideoReason::kNoFrames, path_, "every packet is marked discarded");
  }
  if (index_->frames() > limits_.max_frames) {
    return BadVideo(BadVideoReason::kTooLarge, path_,
                    absl::StrCat(index_->frames(), " frames, more than ", limits_.max_frames));
  }

  const AVCodecParameters* params = index_->codec_params.get();
  const AVCodec* decoder = avcodec_find_decoder(params->codec_id);
  if (decoder == nullptr) {
    return BadVideo(BadVideoReason::kUnsupportedCodec, path_,
                    absl::StrCat("no decoder for ", avcodec_get_name(params->codec_id)));
  }
  rotation_ = DisplayRotation(demuxer_->fmt->streams[stream_]);
  RETURN_IF_ERROR(CheckSize(params, rotation_));
  coded_w_ = params->width;
  coded_h_ = params->height;
  const int display_w = rotation_ % 180 == 0 ? coded_w_ : coded_h_;
  const int display_h = rotation_ % 180 == 0 ? coded_h_ : coded_w_;

  codec_.reset(avcodec_alloc_context3(decoder));
  if (codec_ == nullptr) return absl::ResourceExhaustedError("avcodec_alloc_context3");
  int r = avcodec_parameters_to_context(codec_.get(), params);
  if (r >= 0) {
    codec_->thread_count = 1;  // clips are decoded in parallel, one thread each
    codec_->pkt_timebase = demuxer_->fmt->streams[stream_]->time_base;
    r = avcodec_open2(codec_.get(), decoder, nullptr);
  }
  if (r < 0) {
    return BadVideo(BadVideoReason::kUnsupportedCodec, path_,
                    absl::StrCat("cannot open the ", decoder->name, " decoder: ", AvError(r)));
  }
  skip_allowed_ = PerPacketSkipIsSafe(decoder);

  info_.codec = avcodec_get_name(params->codec_id);
  const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(params->format));
  info_.pixel_format = pix != nullptr ? pix : "";
  info_.width = display_w;
  info_.height = display_h;
  info_.rotation = rotation_;
  info_.frames = index_->frames();
  info_.duration_s = index_->duration_s;
  info_.fps = info_.duration_s > 0 ? static_cast<double>(info_.frames) / info_.duration_s : 0;
  info_.key_frames = static_cast<int64_t>(index_->key_frames.size());

  pkt_.reset(av_packet_alloc());
  frame_.reset(av_frame_alloc());
  last_.reset(av_frame_alloc());
  if (pkt_ == nullptr || frame_ == nullptr || last_ == nullptr) {
    return absl::ResourceExhaustedError("av_packet_alloc / av_frame_alloc");
  }
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::CheckSize(const AVCodecParameters* params, int rotation) const {
  const int w = params->width, h = params->height;
  if (w <= 0 || h <= 0) {
    return BadVideo(BadVideoReason::kNoFrames, path_, "no frame size could be probed");
  }
  // The coded and the displayed size.
  if (w > limits_.max_width || h > limits_.max_height ||
      (rotation % 180 != 0 && (h > limits_.max_width || w > limits_.max_height))) {
    return BadVideo(
        BadVideoReason::kTooLarge, path_,
        absl::StrCat(w, "x", h, " frames, more than ", limits_.max_width, "x", limits_.max_height));
  }
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::OpenIndexed(std::shared_ptr<const FrameIndex> cached) {
  const AVInputFormat* input = av_find_input_format(cached->format_name.c_str());
  if (input == nullptr || cached->codec_params == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(demuxer_, OpenDemuxer(path_, limits_, &interrupt_, input, false));
  AVFormatContext* fmt = demuxer_->fmt;
  const int stream = cached->stream_index;
  if (stream < 0 || static_cast<unsigned>(stream) >= fmt->nb_streams ||
      fmt->streams[stream]->codecpar->codec_id != cached->codec_params->codec_id) {
    demuxer_.reset();  // not what the index describes: index the file afresh
    return absl::OkStatus();
  }
  stream_ = stream;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (static_cast<int>(i) != stream_) fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  index_ = std::move(cached);
  read_pos_ = 0;  // nothing of the stream read yet
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::DecodeFrames(absl::Span<const int64_t> indices,
                                             const FrameSink& sink, absl::Time deadline,
                                             DecodeStats* stats) {
  const int64_t frames = index_->frames();
  std::vector<int64_t> need;
  need.reserve(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t v = indices[i];
    if (v < 0 || v >= frames) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": frame ", v, " outside [0, ", frames, ")"));
    }
    if (i > 0 && v < indices[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": frame indices not ascending at position ", i));
    }
    if (need.empty() || need.back() != v) need.push_back(v);
  }
  if (need.empty()) return absl::OkStatus();

  const absl::Time begin = absl::Now();
  DecodeStats local;
  sink_time_ = absl::ZeroDuration();
  interrupt_.deadline = deadline;
  interrupt_.fired = false;
  absl::Status status = DecodeAll(need, sink, deadline, &local);
  interrupt_.deadline = absl::InfiniteFuture();
  if (!status.ok()) Reset();
  local.demux_decode_s = absl::ToDoubleSeconds(absl::Now() - begin - sink_time_);
  if (stats != nullptr) {
    stats->demux_decode_s += local.demux_decode_s;
    stats->packets_sent += local.packets_sent;
    stats->frames_decoded += local.frames_decoded;
    stats->frames_skipped += local.frames_skipped;
    stats->frames_repeated += local.frames_repeated;
    stats->seeks += local.seeks;
  }
  return status;
}

absl::Status FfmpegVideoReader::DecodeAll(const std::vector<int64_t>& need, const FrameSink& sink,
                                          absl::Time deadline, DecodeStats* stats) {
  // Stretches of packets that decode continuously: a needed frame whose key frame comes after
  // the current stretch's last packet starts a new one (the gap is never decoded).
  std::vector<Segment> segments;
  for (size_t i = 0; i < need.size(); ++i) {
    const int32_t k = index_->start[need[i]];
    const int32_t d = index_->decode_pos[need[i]];
    if (!segments.empty() && k <= segments.back().end + 1) {
      Segment& s = segments.back();
      s.start = std::min(s.start, k);
      s.end = std::max(s.end, d);
      s.last = i + 1;
    } else {
      segments.push_back(Segment{k, d, i, i + 1});
    }
  }
  for (const Segment& seg : segments) {
    for (int attempt = 0;; ++attempt) {
      Run run{&need, seg.first, seg.last};
      desync_ = false;
      absl::Status s;
      if (!primed_ && index_->prime_packet >= 0 && seg.start > index_->prime_packet) {
        s = Prime(stats);
      }
      if (s.ok()) s = PositionAt(seg.start, stats);
      if (s.ok()) s = DecodeSegment(seg, &run, sink, deadline, stats);
      if (s.ok()) break;
      // The demuxer's packets did not line up with the index after a seek: from now on reach
      // packets by reading from the start, once, before anything of this stretch was emitted.
      if (desync_ && attempt == 0 && run.emitted == 0 && !sequential_only_) {
        sequential_only_ = true;
        Reset();
        continue;
      }
      if (desync_) {
        return BadVideo(
            BadVideoReason::kDecodeError, path_,
            absl::StrCat("the demuxer's packets do not match the frame index (", s.message(), ")"));
      }
      return s;
    }
  }
  return absl::OkStatus();
}

bool FfmpegVideoReader::Needed(const Run& run, int64_t frame) const {
  const auto begin = run.need->begin() + static_cast<ptrdiff_t>(run.next);
  const auto end = run.need->begin() + static_cast<ptrdiff_t>(run.last);
  return std::binary_search(begin, end, frame);
}

absl::Status FfmpegVideoReader::SendPacket(int32_t dp, Run* run, const FrameSink& sink,
                                           DecodeStats* stats) {
  const int32_t frame = index_->packets[dp].frame;
  // Decoded frames carry their index as pts.
  pkt_->pts = frame >= 0 ? frame : AV_NOPTS_VALUE;
  pkt_->dts = AV_NOPTS_VALUE;
  const int r = avcodec_send_packet(codec_.get(), pkt_.get());
  av_packet_unref(pkt_.get());
  ++stats->packets_sent;
  if (r < 0) return DecodeError(dp, "decoding", r);
  return Receive(run, sink, stats);
}

absl::Status FfmpegVideoReader::DecodeSegment(const Segment& seg, Run* run, const FrameSink& sink,
                                              absl::Time deadline, DecodeStats* stats) {
  AVCodecContext* c = codec_.get();
  for (int32_t dp = seg.start; dp <= seg.end; ++dp) {
    if (absl::Now() > deadline) return DeadlineError(path_, "decoding");
    RETURN_IF_ERROR(ReadPacket(dp));
    const IndexedPacket& ip = index_->packets[dp];
    if (dp == index_->prime_packet) primed_ = true;
    const bool skip = skip_allowed_ && !(ip.frame >= 0 && Needed(*run, ip.frame));
    c->skip_frame = skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
    if (skip && ip.frame >= 0) ++run->skip_sent;
    RETURN_IF_ERROR(SendPacket(dp, run, sink, stats));
  }
  c->skip_frame = AVDISCARD_DEFAULT;
  // Nothing decoded yet (packets before the first key frame): the first picture after them
  // stands in, so read on until one comes out.
  for (int32_t dp = seg.end + 1; !run->have_last && run->next < run->last &&
                                 dp < static_cast<int32_t>(index_->packets.size());
       ++dp) {
    if (absl::Now() > deadline) return DeadlineError(path_, "decoding");
    RETURN_IF_ERROR(ReadPacket(dp));
    RETURN_IF_ERROR(SendPacket(dp, run, sink, stats));
  }
  const int r = avcodec_send_packet(c, nullptr);
  if (r < 0 && r != AVERROR_EOF) return DecodeError(seg.end, "draining", r);
  RETURN_IF_ERROR(Receive(run, sink, stats));
  avcodec_flush_buffers(c);
  // Needed frames the decoder never produced (a packet without a picture, pictures before the
  // first key frame) repeat the latest frame before them.
  for (; run->next < run->last; ++run->next) {
    if (!run->have_last) {
      return BadVideo(seg.start == 0 ? BadVideoReason::kNoFrames : BadVideoReason::kDecodeError,
                      path_,
                      absl::StrCat("no picture decoded from packets ", seg.start, "..", seg.end));
    }
    ++stats->frames_repeated;
    RETURN_IF_ERROR(Emit((*run->need)[run->next], last_.get(), sink, run));
  }
  if (skip_allowed_)
    stats->frames_skipped += std::max<int64_t>(0, run->skip_sent - run->unneeded_out);
  av_frame_unref(last_.get());
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::Receive(Run* run, const FrameSink& sink, DecodeStats* stats) {
  AVFrame* f = frame_.get();
  while (true) {
    const int r = avcodec_receive_frame(codec_.get(), f);
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return absl::OkStatus();
    if (r < 0) return DecodeError(static_cast<int32_t>(read_pos_ - 1), "decoding", r);
    ++stats->frames_decoded;
    if (f->width > limits_.max_width || f->height > limits_.max_height) {
      return BadVideo(BadVideoReason::kTooLarge, path_,
                      absl::StrCat("a decoded frame is ", f->width, "x", f->height));
    }
    const int64_t index = f->pts;
    if (index == AV_NOPTS_VALUE || index < 0 || index >= index_->frames() ||
        index <= run->last_index) {
      av_frame_unref(f);
      continue;
    }
    if (!Needed(*run, index)) ++run->unneeded_out;
    while (run->next < run->last && (*run->need)[run->next] < index) {
      ++stats->frames_repeated;
      RETURN_IF_ERROR(Emit((*run->need)[run->next], run->have_last ? last_.get() : f, sink, run));
      ++run->next;
    }
    if (run->next < run->last && (*run->need)[run->next] == index) {
      RETURN_IF_ERROR(Emit(index, f, sink, run));
      ++run->next;
    }
    av_frame_unref(last_.get());
    av_frame_move_ref(last_.get(), f);
    run->have_last = true;
    run->last_index = index;
  }
}

absl::Status FfmpegVideoReader::Emit(int64_t index, const AVFrame* frame, const FrameSink& sink,
                                     Run* run) {
  if ((frame->flags & AV_FRAME_FLAG_CORRUPT) || frame->decode_error_flags != 0) {
    return BadVideo(BadVideoReason::kDecodeError, path_,
                    absl::StrCat("frame ", index, " decoded with errors"));
  }
  const AvFrameView view(frame, coded_w_, coded_h_, rotation_, &converter_);
  const absl::Time t0 = absl::Now();
  absl::Status s = sink(index, view);
  sink_time_ += absl::Now() - t0;
  ++run->emitted;
  return s;
}

absl::Status FfmpegVideoReader::Prime(DecodeStats* stats) {
  const int32_t p = index_->prime_packet;
  RETURN_IF_ERROR(PositionAt(p, stats));
  RETURN_IF_ERROR(ReadPacket(p));
  AVCodecContext* c = codec_.get();
  c->skip_frame = AVDISCARD_ALL;  // the headers and SEI, not the picture
  pkt_->pts = AV_NOPTS_VALUE;
  pkt_->dts = AV_NOPTS_VALUE;
  const int r = avcodec_send_packet(c, pkt_.get());
  av_packet_unref(pkt_.get());
  c->skip_frame = AVDISCARD_DEFAULT;
  ++stats->packets_sent;
  if (r < 0) return DecodeError(p, "reading the stream headers", r);
  while (avcodec_receive_frame(c, frame_.get()) >= 0) av_frame_unref(frame_.get());
  avcodec_flush_buffers(c);  // stream-level state survives a flush
  primed_ = true;
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::PositionAt(int32_t k, DecodeStats* stats) {
  if (read_pos_ >= 0 && read_pos_ <= k) {
    int64_t bytes = 0;
    for (int64_t d = read_pos_; d < k && bytes <= kReadThroughBytes; ++d) {
      bytes += index_->packets[d].size;
    }
    if (sequential_only_ || !index_->has_timestamps ||
        (k - read_pos_ <= kReadThroughPackets && bytes <= kReadThroughBytes)) {
      return SkipTo(k);
    }
  }
  if (!sequential_only_ && index_->has_timestamps) {
    ASSIGN_OR_RETURN(const bool ok, SeekTo(k, stats));
    if (ok) return absl::OkStatus();
  }
  RETURN_IF_ERROR(Rewind());
  return SkipTo(k);
}

absl::StatusOr<bool> FfmpegVideoReader::SeekTo(int32_t k, DecodeStats* stats) {
  // Demuxers seek by presentation time (MP4, Matroska) or by decode time: aim at the key frame's
  // pts, then at its earliest timestamp, then at earlier key frames; reading on from a landing
  // before `k` is cheap, one after it is useless.
  std::vector<int64_t> targets;
  const IndexedPacket& key = index_->packets[k];
  if (key.pts != kNoTimestamp) targets.push_back(key.pts);
  int32_t earlier = k;
  while (static_cast<int>(targets.size()) < kSeekTries && earlier >= 0) {
    const int64_t ts = SeekTimestamp(index_->packets[earlier]);
    if (ts != kNoTimestamp && (targets.empty() || ts < targets.back())) targets.push_back(ts);
    do {
      --earlier;
    } while (earlier >= 0 && !index_->packets[earlier].key);
  }
  for (const int64_t ts : targets) {
    DropStash();
    read_pos_ = -1;
    ++stats->seeks;
    const int r = av_seek_frame(demuxer_->fmt, stream_, ts, AVSEEK_FLAG_BACKWARD);
    if (interrupt_.fired) return DeadlineError(path_, "seeking");
    if (r < 0) break;
    ASSIGN_OR_RETURN(const int32_t landed, Identify());
    if (landed < 0) break;
    if (landed <= k) {
      read_pos_ = landed;
      RETURN_IF_ERROR(SkipTo(k));
      return true;
    }
  }
  DropStash();
  read_pos_ = -1;
  return false;
}

absl::StatusOr<int32_t> FfmpegVideoReader::Identify() {
  AVPacket* p = pkt_.get();
  for (int n = 0; n < kIdentifyPackets;) {
    const int r = av_read_frame(demuxer_->fmt, p);
    if (interrupt_.fired) return DeadlineError(path_, "seeking");
    if (r < 0) return -1;
    if (p->stream_index != stream_) {
      av_packet_unref(p);
      continue;
    }
    ++n;
    int32_t d = index_->FindByPos(p->pos, p->size);
    if (d < 0) d = index_->FindByTimestamp(p->pts != AV_NOPTS_VALUE ? p->pts : p->dts, p->size);
    if (d >= 0) {
      stashed_ = true;
      stash_dp_ = d;
      return d;
    }
    av_packet_unref(p);
  }
  return -1;
}

absl::Status FfmpegVideoReader::Rewind() {
  DropStash();
  read_pos_ = -1;
  ASSIGN_OR_RETURN(auto fresh, OpenDemuxer(path_, limits_, &interrupt_, nullptr, true));
  AVFormatContext* fmt = fresh->fmt;
  if (static_cast<unsigned>(stream_) >= fmt->nb_streams ||
      fmt->streams[stream_]->codecpar->codec_id != codec_->codec_id) {
    return BadVideo(BadVideoReason::kDecodeError, path_, "the streams changed on reopening");
  }
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (static_cast<int>(i) != stream_) fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  demuxer_ = std::move(fresh);
  read_pos_ = 0;
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::SkipTo(int32_t k) {
  while (read_pos_ < k) {
    RETURN_IF_ERROR(ReadPacket(static_cast<int32_t>(read_pos_)));
    av_packet_unref(pkt_.get());
  }
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::ReadPacket(int32_t dp) {
  if (stashed_) {
    stashed_ = false;
    if (stash_dp_ != dp) {
      av_packet_unref(pkt_.get());
      desync_ = true;
      return absl::AbortedError(absl::StrCat("expected packet ", dp, ", have ", stash_dp_));
    }
  } else {
    RETURN_IF_ERROR(ReadStreamPacket(dp));
  }
  const int32_t expected = index_->packets[dp].size;
  if (pkt_->size != expected) {
    const int size = pkt_->size;
    av_packet_unref(pkt_.get());
    desync_ = true;
    read_pos_ = -1;
    return absl::AbortedError(absl::StrCat("packet ", dp, " has ", size, " bytes, not ", expected));
  }
  read_pos_ = dp + 1;
  return absl::OkStatus();
}

absl::Status FfmpegVideoReader::ReadStreamPacket(int32_t dp) {
  AVPacket* p = pkt_.get();
  int again = 0;
  while (true) {
    const int r = av_read_frame(demuxer_->fmt, p);
    if (r >= 0) {
      if (p->stream_index == stream_) return absl::OkStatus();
      av_packet_unref(p);
      continue;
    }
    if (interrupt_.fired) return DeadlineError(path_, "decoding");
    if (r == AVERROR(EAGAIN) && ++again < kMaxAgain) continue;
    read_pos_ = -1;
    if (r == AVERROR_EOF || avio_feof(demuxer_->fmt->pb)) {
      return BadVideo(
          BadVideoReason::kTruncated, path_,
          absl::StrCat("the file ends before packet ", dp, " of ", index_->packets.size()));
    }
    return BadVideo(BadVideoReason::kDecodeError, path_,
                    absl::StrCat("demuxer error before packet ", dp, ": ", AvError(r)));
  }
}

void FfmpegVideoReader::DropStash() {
  if (stashed_) av_packet_unref(pkt_.get());
  stashed_ = false;
  stash_dp_ = -1;
}

void FfmpegVideoReader::Reset() {
  DropStash();
  av_packet_unref(pkt_.get());
  av_frame_unref(frame_.get());
  av_frame_unref(last_.get());
  avcodec_flush_buffers(codec_.get());
  read_pos_ = -1;
}

absl::Status FfmpegVideoReader::DecodeError(int32_t dp, std::string_view what, int err) const {
  const int32_t frame =
      dp >= 0 && dp < static_cast<int32_t>(index_->packets.size()) ? index_->packets[dp].frame : -1;
  return BadVideo(BadVideoReason::kDecodeError, path_,
                  absl::StrCat(absl::string_view(what.data(), what.size()), " failed at packet ",
                               dp, " (frame ", frame, "): ", AvError(err)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<VideoReader>> VideoReader::Open(const std::string& path,
                                                               const ReaderLimits& limits,
                                                               FrameIndexCache* cache) {
  QuietLogsOnce();
  auto reader = std::make_unique<FfmpegVideoReader>(path, limits);
  RETURN_IF_ERROR(reader->Init(cache));
  return reader;
}

}  // namespace vjepa::dataworker
