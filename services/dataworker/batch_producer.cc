#include "services/dataworker/batch_producer.h"

namespace vjepa::dataworker {

int64_t ProducedBatch::bytes() const {
  int64_t total = static_cast<int64_t>(header.ByteSizeLong());
  for (const ClipBuffer& clip : clips) total += clip ? static_cast<int64_t>(clip->size()) : 0;
  return total;
}

}  // namespace vjepa::dataworker
