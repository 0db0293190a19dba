#include "services/dataworker/video/frame_index.h"

#include <algorithm>
#include <deque>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vjepa::dataworker {
namespace {

int64_t FrameTimestamp(const IndexedPacket& p) { return p.pts != kNoTimestamp ? p.pts : p.dts; }

// How far back (in key frames) to look for one presented no later than the frame itself: a
// frame presented before the key frame that precedes it in decode order (a leading picture of an
// open GOP) decodes from an earlier key frame.
constexpr int kMaxKeyStepsBack = 8;

}  // namespace

size_t FrameIndex::MemoryBytes() const {
  return sizeof(FrameIndex) + packets.capacity() * sizeof(IndexedPacket) +
         timestamps.capacity() * sizeof(int64_t) + decode_pos.capacity() * sizeof(int32_t) +
         start.capacity() * sizeof(int32_t) + key_frames.capacity() * sizeof(int64_t) +
         (by_pos.capacity() + by_timestamp.capacity()) * sizeof(std::pair<int64_t, int32_t>);
}

int32_t FrameIndex::FindByPos(int64_t pos, int32_t size) const {
  if (pos < 0) return -1;
  auto it = std::lower_bound(by_pos.begin(), by_pos.end(), std::make_pair(pos, int32_t{-1}));
  if (it == by_pos.end() || it->first != pos) return -1;
  return packets[it->second].size == size ? it->second : -1;
}

int32_t FrameIndex::FindByTimestamp(int64_t ts, int32_t size) const {
  if (!has_timestamps || ts == kNoTimestamp) return -1;
  auto it = std::lower_bound(by_timestamp.begin(), by_timestamp.end(),
                             std::make_pair(ts, std::numeric_limits<int32_t>::min()));
  int32_t found = -1;
  for (; it != by_timestamp.end() && it->first == ts; ++it) {
    if (packets[it->second].size != size) continue;
    if (found >= 0) return -1;
    found = it->second;
  }
  return found;
}

FrameIndex BuildFrameIndex(int stream_index, int time_base_num, int time_base_den,
                           std::vector<IndexedPacket> packets, double fallback_frame_s) {
  FrameIndex index;
  index.stream_index = stream_index;
  index.time_base_num = time_base_num;
  index.time_base_den = time_base_den > 0 ? time_base_den : 1;
  index.packets = std::move(packets);
  std::vector<IndexedPacket>& pk = index.packets;

  // The frames: every packet that is not discarded, in presentation order.
  std::vector<int32_t> order;
  order.reserve(pk.size());
  bool timestamps = true;
  for (size_t d = 0; d < pk.size(); ++d) {
    if (pk[d].frame == -1) continue;
    order.push_back(static_cast<int32_t>(d));
    if (FrameTimestamp(pk[d]) == kNoTimestamp) timestamps = false;
  }
  index.has_timestamps = timestamps && !order.empty();
  // Stretch of each frame packet (order is still in decode order here).
  std::vector<int32_t> stretch(pk.size(), 0);
  int32_t stretches = 1;
  if (index.has_timestamps) {
    std::deque<int64_t> recent;  // the current stretch's last kReorderWindow timestamps
    for (int32_t d : order) {
      const int64_t ts = FrameTimestamp(pk[d]);
      if (!recent.empty() && ts <= *std::min_element(recent.begin(), recent.end())) {
        ++stretches;
        recent.clear();
      }
      stretch[d] = stretches - 1;
      recent.push_back(ts);
      if (recent.size() > kReorderWindow) recent.pop_front();
    }
    std::stable_sort(order.begin(), order.end(), [&pk, &stretch](int32_t a, int32_t b) {
      if (stretch[a] != stretch[b]) return stretch[a] < stretch[b];
      return FrameTimestamp(pk[a]) < FrameTimestamp(pk[b]);
    });
  }
  const int64_t frames = static_cast<int64_t>(order.size());
  index.decode_pos = order;
  index.timestamps.resize(frames);
  for (int64_t i = 0; i < frames; ++i) {
    IndexedPacket& p = pk[order[i]];
    p.frame = static_cast<int32_t>(i);
    index.timestamps[i] = FrameTimestamp(p);
    if (p.key) index.key_frames.push_back(i);
  }

  // last_key[d]: the last key packet at or before decode position d (-1 when none).
  std::vector<int32_t> last_key(pk.size());
  int32_t last = -1;
  for (size_t d = 0; d < pk.size(); ++d) {
    if (pk[d].key) last = static_cast<int32_t>(d);
    last_key[d] = last;
  }
  index.start.resize(frames);
  for (int64_t i = 0; i < frames; ++i) {
    int32_t k = last_key[order[i]];
    int steps = 0;
    while (k >= 0 && pk[k].frame > i) {
      k = (k > 0 && ++steps < kMaxKeyStepsBack) ? last_key[k - 1] : -1;
    }
    index.start[i] = std::max(k, int32_t{0});
  }

  for (size_t d = 0; d < pk.size(); ++d) {
    if (pk[d].pos >= 0) index.by_pos.emplace_back(pk[d].pos, static_cast<int32_t>(d));
  }
  std::sort(index.by_pos.begin(), index.by_pos.end());
  std::vector<std::pair<int64_t, int32_t>> unique;
  unique.reserve(index.by_pos.size());
  for (size_t i = 0; i < index.by_pos.size(); ++i) {
    const int64_t pos = index.by_pos[i].first;
    const bool dup = (i > 0 && index.by_pos[i - 1].first == pos) ||
                     (i + 1 < index.by_pos.size() && index.by_pos[i + 1].first == pos);
    if (!dup) unique.push_back(index.by_pos[i]);
  }
  index.by_pos = std::move(unique);
  if (index.has_timestamps) {
    for (int64_t i = 0; i < frames; ++i) {
      index.by_timestamp.emplace_back(index.timestamps[i], order[i]);
    }
    std::sort(index.by_timestamp.begin(), index.by_timestamp.end());
  }

  if (index.has_timestamps && frames >= 2) {
    // Per stretch: its span and its number of intervals.
    double span = 0;
    int64_t intervals = 0;
    for (int64_t i = 0; i < frames;) {
      int64_t j = i;
      while (j + 1 < frames && stretch[order[j + 1]] == stretch[order[i]]) ++j;
      span += static_cast<double>(index.timestamps[j] - index.timestamps[i]);
      intervals += j - i;
      i = j + 1;
    }
    const double tb = static_cast<double>(index.time_base_num) / index.time_base_den;
    const double interval = intervals > 0 ? span / static_cast<double>(intervals) : 0;
    index.duration_s = (span + static_cast<double>(stretches) * interval) * tb;
  } else {
    index.duration_s = static_cast<double>(frames) * fallback_frame_s;
  }
  return index;
}

FrameIndexCache::FrameIndexCache(size_t max_entries, size_t max_bytes)
    : max_entries_(std::max<size_t>(max_entries, 1)), max_bytes_(max_bytes) {}

std::string FrameIndexCache::KeyOf(const FileVersion& file) {
  return absl::StrCat(file.size, ":", file.mtime_ns, ":", file.path);
}

std::shared_ptr<const FrameIndex> FrameIndexCache::Lookup(const FileVersion& file) {
  const std::string key = KeyOf(file);
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->index;
}

void FrameIndexCache::Insert(const FileVersion& file, std::shared_ptr<const FrameIndex> index) {
  std::string key = KeyOf(file);
  const size_t bytes = (index != nullptr ? index->MemoryBytes() : 0) + key.size();
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    by_key_.erase(it);
  }
  lru_.push_front(Entry{key, std::move(index), bytes});
  by_key_.emplace(std::move(key), lru_.begin());
  bytes_ += bytes;
  EvictLocked();
}

void FrameIndexCache::EvictLocked() {
  // The newest entry stays even when it alone is over the byte bound.
  while (lru_.size() > max_entries_ || (lru_.size() > 1 && bytes_ > max_bytes_)) {
    bytes_ -= lru_.back().bytes;
    by_key_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

size_t FrameIndexCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

size_t FrameIndexCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

int64_t FrameIndexCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

int64_t FrameIndexCache::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

}  // namespace vjepa::dataworker
