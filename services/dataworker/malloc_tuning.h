// Heap settings for processes that move multi-megabyte messages (a 16×224² clip is 2.4 MB):
// with glibc's defaults every such buffer is a fresh mmap (or a heap that is trimmed right
// after), so each message costs page faults and zeroing of new pages, and the stream runs at
// half speed (measured with vjepa-bench-wire). Call once, early in main, on both ends of the
// batch stream (dataworker and trainer).
#ifndef VJEPA_SERVICES_DATAWORKER_MALLOC_TUNING_H_
#define VJEPA_SERVICES_DATAWORKER_MALLOC_TUNING_H_

#include <cstddef>

namespace vjepa::dataworker {

// Allocations up to 32 MiB come from the heap, and up to `keep_bytes` of freed memory stays
// mapped for reuse instead of being trimmed. False when glibc refuses a setting.
bool KeepLargeBuffersInHeap(size_t keep_bytes = size_t{256} << 20);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_MALLOC_TUNING_H_
