// SHA-256 (FIPS 180-4) in plain C++: the core links nothing but LibTorch, so no OpenSSL here.
#ifndef VJEPA_SERVICES_TRAINER_CHECKPOINT_SHA256_H_
#define VJEPA_SERVICES_TRAINER_CHECKPOINT_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vjepa::checkpoint {

using Sha256Digest = std::array<uint8_t, 32>;

// Streaming digest: Update() any number of times, then Finish(), which also resets the object so
// that it can hash the next message.
class Sha256 {
 public:
  Sha256() { Reset(); }
  void Reset();
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  Sha256Digest Finish();

 private:
  void Compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_;
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex, 64 characters.
std::string ToHex(const Sha256Digest& digest);
std::string Sha256Hex(std::string_view data);

}  // namespace vjepa::checkpoint

#endif  // VJEPA_SERVICES_TRAINER_CHECKPOINT_SHA256_H_
