// Helpers for the dataworker's tests: taking batches off a stream handle, reading metrics.
#ifndef VJEPA_SERVICES_DATAWORKER_TEST_UTIL_H_
#define VJEPA_SERVICES_DATAWORKER_TEST_UTIL_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "services/dataworker/data_service.h"
#include "services/dataworker/synthetic_producer.h"

namespace vjepa::dataworker {

// The next batch of `stream`, waiting up to `timeout` for it; null when the stream ended (its
// status in *end) or nothing came in time (*end DEADLINE_EXCEEDED).
std::unique_ptr<ProducedBatch> TakeBatch(StreamHandle& stream, absl::Status* end = nullptr,
                                         absl::Duration timeout = absl::Seconds(30));

// Polls `ready` every 5 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& ready, absl::Duration timeout = absl::Seconds(30));

// The value of the sample `series` ("name" or "name{label=\"v\"}") in the registry's text
// exposition; -1 when absent.
double MetricValue(const metrics::Registry& registry, const std::string& series);

// Clip `clip` of batch (epoch, batch_index) as a SyntheticProducer with `options` makes it.
std::string SyntheticClip(const SyntheticOptions& options, int64_t epoch, int64_t batch_index,
                          int clip);

// Writes a small H.264 clip (testsrc pattern) with the ffmpeg CLI; false (with ffmpeg's
// output on stderr) when it fails.
bool MakeTestVideo(const std::string& path, int width = 64, int height = 48, int frames = 40,
                   int fps = 25, int gop = 10);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_TEST_UTIL_H_
