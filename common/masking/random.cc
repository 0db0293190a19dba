#include "common/masking/random.h"

#include <cstddef>
#include <utility>

namespace vjepa::masking {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53;
constexpr uint32_t kMul1 = 0xCD9E8D57;
constexpr uint32_t kWeyl0 = 0x9E3779B9;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85;  // sqrt(3) - 1
// High words of every derivation counter; draw counters have zeros there.
constexpr uint32_t kDeriveTag0 = 0x243F6A88;  // digits of pi
constexpr uint32_t kDeriveTag1 = 0x85A308D3;

uint32_t Lo(uint64_t x) { return static_cast<uint32_t>(x); }
uint32_t Hi(uint64_t x) { return static_cast<uint32_t>(x >> 32); }

}  // namespace

std::array<uint32_t, 4> Philox4x32_10(const std::array<uint32_t, 4>& counter,
                                      const std::array<uint32_t, 2>& key) {
  std::array<uint32_t, 4> c = counter;
  uint32_t k0 = key[0];
  uint32_t k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c[2];
    c = {Hi(p1) ^ c[1] ^ k0, Lo(p1), Hi(p0) ^ c[3] ^ k1, Lo(p0)};
  }
  return c;
}

RandomStream RandomStream::Root(uint64_t seed) { return RandomStream(seed); }

RandomStream RandomStream::ForEpoch(uint64_t seed, DrawKind kind, int64_t epoch) {
  return Root(seed).Derive(static_cast<uint64_t>(kind)).Derive(static_cast<uint64_t>(epoch));
}

RandomStream RandomStream::ForBatch(uint64_t seed, DrawKind kind, int64_t epoch,
                                    int64_t batch_index) {
  return ForEpoch(seed, kind, epoch).Derive(static_cast<uint64_t>(batch_index));
}

RandomStream RandomStream::Derive(uint64_t component) const {
  const std::array<uint32_t, 4> out =
      Philox4x32_10({Lo(component), Hi(component), kDeriveTag0, kDeriveTag1}, {Lo(key_), Hi(key_)});
  return RandomStream(static_cast<uint64_t>(out[0]) | (static_cast<uint64_t>(out[1]) << 32));
}

uint32_t RandomStream::NextU32() {
  if (used_ == 4) {
    words_ = Philox4x32_10({Lo(block_), Hi(block_), 0, 0}, {Lo(key_), Hi(key_)});
    ++block_;
    used_ = 0;
  }
  return words_[used_++];
}

uint64_t RandomStream::NextU64() {
  const uint64_t lo = NextU32();
  const uint64_t hi = NextU32();
  return lo | (hi << 32);
}

double RandomStream::Uniform() { return UnitInterval(NextU64()); }

int64_t RandomStream::UniformInt(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  // Width of [lo, hi] minus one, in unsigned arithmetic (no overflow for any int64 pair).
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  uint64_t offset;
  if (span == UINT64_MAX) {
    offset = NextU64();
  } else {
    const uint64_t range = span + 1;
    // Accept x >= 2^64 mod range: the accepted values are a whole number of copies of
    // [0, range), so x mod range is exactly uniform.
    const uint64_t threshold = (0 - range) % range;
    uint64_t x;
    do {
      x = NextU64();
    } while (x < threshold);
    offset = x % range;
  }
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + offset);
}

bool RandomStream::Bernoulli(double p) { return Uniform() < p; }

std::vector<int32_t> RandomStream::SampleWithoutReplacement(int32_t n, int32_t k) {
  if (n < 0) n = 0;
  if (k < 0) k = 0;
  if (k > n) k = n;
  std::vector<int32_t> slots(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) slots[i] = i;
  for (int32_t i = 0; i < k; ++i) {
    const auto j = static_cast<int32_t>(UniformInt(i, n - 1));
    std::swap(slots[i], slots[j]);
  }
  slots.resize(static_cast<size_t>(k));
  return slots;
}

}  // namespace vjepa::masking
