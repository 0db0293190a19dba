// Opaque ids of coordinator objects: a prefix and 10 random hex digits ("j-3f9c2a81d0").
#ifndef VJEPA_SERVICES_COORDINATOR_IDS_H_
#define VJEPA_SERVICES_COORDINATOR_IDS_H_

#include <cstdint>
#include <random>
#include <string>

namespace vjepa::coordinator {

inline std::string NewId(const char* prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = prefix;
  uint64_t r = rng();
  for (int i = 0; i < 10; ++i, r >>= 4) id.push_back(kHex[r & 15]);
  return id;
}

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_IDS_H_
