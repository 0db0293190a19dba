#include "services/dataworker/malloc_tuning.h"

#include <malloc.h>

#include <climits>

namespace vjepa::dataworker {

bool KeepLargeBuffersInHeap(size_t keep_bytes) {
  // 32 MiB is glibc's upper bound for the mmap threshold on 64-bit systems.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const int trim =
      keep_bytes > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(keep_bytes);
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, trim) == 1;
  return mmap_ok && trim_ok;
}

}  // namespace vjepa::dataworker
