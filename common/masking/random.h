// Counter-based random numbers for everything a batch draws (clip start, crop, flip, mask block
// sizes and positions), so that any dataworker reproduces a batch byte for byte from
// (job seed, data epoch, batch index) alone (docs/architecture.md §4).
//
// The generator is Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011), checked against Random123's known-answer vectors. A stream is a 64-bit
// Philox key; its n-th block of four 32-bit words is Philox(key, counter = (n_lo, n_hi, 0, 0)).
// The sub-stream for a component x has as key the first two words of
// Philox(parent key, counter = (x_lo, x_hi, kDeriveTag)): derivation counters never equal draw
// counters, so a parent's draws and its children's keys are distinct outputs of one bijection.
// A batch stream is Root(seed) → kind → epoch → batch index, then whatever the caller derives
// (mask index, sample, ...); the kind comes first so that streams of different kinds share no
// prefix.
//
// The distributions are written out here: never std::*_distribution, whose output differs
// between standard libraries.
#ifndef VJEPA_COMMON_MASKING_RANDOM_H_
#define VJEPA_COMMON_MASKING_RANDOM_H_

#include <array>
#include <cstdint>
#include <vector>

namespace vjepa::masking {

// What a stream is for. The numbers are part of the data format: changing one changes the bytes
// of every batch, so new kinds get new numbers and old ones are never reused.
enum class DrawKind : uint32_t {
  kEpochPermutation = 1,  // order of the manifest within a data epoch
  kClipStart = 2,         // where a clip starts in its video
  kCrop = 3,              // random-resized-crop box
  kFlip = 4,              // horizontal flip
  kMaskBlockSize = 5,     // multi-block: one block size per batch and mask config
  kMaskPosition = 6,      // per-sample mask positions (blocks, tubes)
  kReplacement = 7,       // choice of a replacement for a bad video
  kProbeView = 8,         // evaluation views
};

// One Philox4x32-10 block: ten rounds over `counter` with `key`.
std::array<uint32_t, 4> Philox4x32_10(const std::array<uint32_t, 4>& counter,
                                      const std::array<uint32_t, 2>& key);

// 53 random bits of `bits` (its high ones) as a double in [0, 1).
inline double UnitInterval(uint64_t bits) {
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

// A sequence of random words. Cheap to copy; a copy continues independently from the same point.
class RandomStream {
 public:
  // The root of a job's randomness: Philox key = seed.
  static RandomStream Root(uint64_t seed);
  // Root(seed) → kind → epoch.
  static RandomStream ForEpoch(uint64_t seed, DrawKind kind, int64_t epoch);
  // Root(seed) → kind → epoch → batch_index.
  static RandomStream ForBatch(uint64_t seed, DrawKind kind, int64_t epoch, int64_t batch_index);

  // The independent sub-stream for `component` (a sample, a mask index, ...). It starts at its
  // own beginning whatever this stream has drawn so far.
  RandomStream Derive(uint64_t component) const;

  uint64_t key() const { return key_; }

  uint32_t NextU32();
  // Two consecutive words, the first in the low half.
  uint64_t NextU64();
  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  // Uniform in [lo, hi], both inclusive, without modulo bias (rejection). hi < lo returns lo
  // and draws nothing.
  int64_t UniformInt(int64_t lo, int64_t hi);
  // True with probability p (Uniform() < p).
  bool Bernoulli(double p);
  // k distinct values of [0, n), uniformly, in the order drawn (partial Fisher-Yates: draw i
  // swaps slot i with a slot uniform in [i, n)). k is clamped to [0, n].
  std::vector<int32_t> SampleWithoutReplacement(int32_t n, int32_t k);

 private:
  explicit RandomStream(uint64_t key) : key_(key) {}

  uint64_t key_;
  uint64_t block_ = 0;  // next block to compute
  std::array<uint32_t, 4> words_{};
  int used_ = 4;  // words of `words_` already handed out
};

}  // namespace vjepa::masking

#endif  // VJEPA_COMMON_MASKING_RANDOM_H_
