// The frames of one video stream as found by a demux-only pass, and a bounded, thread-safe LRU
// cache of them keyed by file version (canonical path, size, modification time), so that the
// pass runs once per file version however many clips are cut from it.
#ifndef VJEPA_SERVICES_DATAWORKER_VIDEO_FRAME_INDEX_H_
#define VJEPA_SERVICES_DATAWORKER_VIDEO_FRAME_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

extern "C" {
struct AVCodecParameters;
}

namespace vjepa::dataworker {

// Marks a missing timestamp (the value of AV_NOPTS_VALUE).
inline constexpr int64_t kNoTimestamp = std::numeric_limits<int64_t>::min();
// Frames (in decode order) over which a codec may reorder pictures (H.264's maximum DPB).
inline constexpr int kReorderWindow = 16;

// One packet of the video stream, in decode (file) order.
struct IndexedPacket {
  int64_t pos = -1;            // byte offset in the file; -1 when the demuxer does not say
  int64_t pts = kNoTimestamp;  // as demuxed, in the stream's time base
  int64_t dts = kNoTimestamp;
  int32_t size = 0;
  int32_t frame = -1;  // presentation index; -1 for a packet the demuxer marks as discarded
  bool key = false;
};

struct FrameIndex {
  // What reopening the file needs to skip probing: the demuxer's name and the stream's codec
  // parameters as probed (avformat_find_stream_info) when the index was built.
  std::string format_name;
  std::shared_ptr<const AVCodecParameters> codec_params;
  int stream_index = -1;
  int time_base_num = 0;  // the stream's time base
  int time_base_den = 1;
  // Every packet of the stream in decode order (including discarded ones, which decoding from a
  // key frame may need as references).
  std::vector<IndexedPacket> packets;
  // Per frame (presentation order): its timestamp (the packet's pts, else its dts); the position
  // of its packet in `packets`; the position in `packets` of the key frame that decoding starts
  // at to reconstruct it (0 when no key frame precedes it). Frames are ordered by timestamp within
  // stretches of continuous timestamps, the stretches in file order: a frame whose timestamp lies
  // at or below those of all of the previous kReorderWindow frames (in decode order) starts a new
  // stretch (timestamps that restart in a concatenated file).
  std::vector<int64_t> timestamps;
  std::vector<int32_t> decode_pos;
  std::vector<int32_t> start;
  // Presentation indices of the frames whose packets are key frames, ascending.
  std::vector<int64_t> key_frames;
  // Every packet had a pts or a dts: frames are ordered by them and seeks go by timestamp.
  // Otherwise frames are in decode order and the reader never seeks by timestamp.
  bool has_timestamps = false;
  // (byte offset, position in `packets`) of packets with a known, unique offset, by offset; and
  // (timestamp, position in `packets`) of the frames, by timestamp.
  std::vector<std::pair<int64_t, int32_t>> by_pos;
  std::vector<std::pair<int64_t, int32_t>> by_timestamp;
  // Presentation span: the stretches' spans (last - first) plus one frame each, the mean
  // interval between frames.
  double duration_s = 0;
  // Position in `packets` of the first key frame when its in-band data (parameter sets, the
  // encoder's identification) may matter to later ones: a decoder starting at another key frame
  // reads it first. -1: none.
  int32_t prime_packet = -1;

  int64_t frames() const { return static_cast<int64_t>(decode_pos.size()); }
  size_t MemoryBytes() const;
  // The position in `packets` of the packet at byte offset `pos` with `size` bytes, or -1.
  int32_t FindByPos(int64_t pos, int32_t size) const;
  // The position in `packets` of the only packet with frame timestamp `ts` and `size` bytes, or
  // -1 when there is none or more than one.
  int32_t FindByTimestamp(int64_t ts, int32_t size) const;
};

// Builds the index from the stream's packets in decode order, where `frame` is -1 for a packet
// the demuxer marks as discarded and anything else for a frame (the index assigns the numbers).
// `fallback_frame_s` is one frame's duration in seconds when the timestamps cannot tell (a single
// frame, no timestamps), 0 when unknown.
FrameIndex BuildFrameIndex(int stream_index, int time_base_num, int time_base_den,
                           std::vector<IndexedPacket> packets, double fallback_frame_s);

// A file version: the cache key.
struct FileVersion {
  std::string path;  // canonical (realpath)
  int64_t size = 0;
  int64_t mtime_ns = 0;
};

class FrameIndexCache {
 public:
  // At most `max_entries` indices and about `max_bytes` of them (FrameIndex::MemoryBytes).
  explicit FrameIndexCache(size_t max_entries = 4096, size_t max_bytes = size_t{256} << 20);
  FrameIndexCache(const FrameIndexCache&) = delete;
  FrameIndexCache& operator=(const FrameIndexCache&) = delete;

  // The index of this file version, or null.
  std::shared_ptr<const FrameIndex> Lookup(const FileVersion& file) ABSL_LOCKS_EXCLUDED(mu_);
  // Stores (or replaces) the index of `file`, evicting the least recently used entries beyond
  // the bound.
  void Insert(const FileVersion& file, std::shared_ptr<const FrameIndex> index)
      ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t hits() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t misses() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const FrameIndex> index;
    size_t bytes;
  };
  static std::string KeyOf(const FileVersion& file);
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  const size_t max_bytes_;
  mutable absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_VIDEO_FRAME_INDEX_H_
