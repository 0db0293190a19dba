#include "services/dataworker/dataworker_metrics.h"

#include <string>

#include "services/dataworker/video/bad_video.h"

namespace vjepa::dataworker {
namespace {

prometheus::Counter& Plain(metrics::Registry& r, const std::string& name, const std::string& help) {
  return metrics::AddCounter(r, name, help).Add({});
}

}  // namespace

DataworkerMetrics::DataworkerMetrics(metrics::Registry& r)
    : clips_produced(Plain(r, "vjepa_dataworker_clips_produced_total",
                           "Clips produced (tokens ready to send)")),
      batches_produced(Plain(r, "vjepa_dataworker_batches_produced_total", "Batches produced")),
      batch_seconds(metrics::AddHistogram(r, "vjepa_dataworker_batch_seconds",
                                          "Wall time to produce one batch")
                        .Add({}, metrics::LatencyBuckets())),
      decode_seconds(metrics::AddHistogram(r, "vjepa_dataworker_decode_seconds",
                                           "Open + demux + decode time per sample's video "
                                           "(its clips)")
                         .Add({}, metrics::LatencyBuckets())),
      stage_seconds(metrics::AddCounter(r, "vjepa_dataworker_stage_seconds_total",
                                        "Producer time per stage: decode (demux + decode), "
                                        "convert (colour, crop, resize, flip), patchify, mask")),
      buffered_batches(metrics::AddGauge(r, "vjepa_dataworker_stream_buffer_batches",
                                         "Produced batches waiting in stream buffers")
                           .Add({})),
      batches_sent(Plain(r, "vjepa_dataworker_batches_sent_total",
                         "Batches written completely to a trainer stream")),
      bytes_sent(Plain(r, "vjepa_dataworker_bytes_sent_total",
                       "Bytes of batch messages written to trainer streams")),
      bad_videos(metrics::AddCounter(r, "vjepa_dataworker_bad_videos_total",
                                     "Videos quarantined, by reason")),
      leases_received(Plain(r, "vjepa_dataworker_leases_received_total",
                            "Batch leases received from the coordinator")),
      leases_failed(metrics::AddCounter(r, "vjepa_dataworker_leases_failed_total",
                                        "Leases that could not be delivered, by reason")),
      leases_returned(Plain(r, "vjepa_dataworker_leases_returned_total",
                            "Leases handed back to the coordinator unproduced")),
      leases_dropped(metrics::AddCounter(r, "vjepa_dataworker_leases_dropped_total",
                                         "Leases dropped without producing: stale generation, "
                                         "or already consumed by the trainer")),
      active_streams(metrics::AddGauge(r, "vjepa_dataworker_active_streams",
                                       "StreamBatches calls being served")
                         .Add({})),
      producer_busy_seconds(Plain(r, "vjepa_dataworker_producer_busy_seconds_total",
                                  "Time producer threads spent producing batches")),
      coordinator_errors(metrics::AddCounter(r, "vjepa_dataworker_coordinator_errors_total",
                                             "Failed calls to the coordinator, by RPC")) {
  for (BadVideoReason reason : AllBadVideoReasons()) {
    bad_videos.Add({{"reason", std::string(BadVideoReasonName(reason))}});
  }
  for (const char* stage : {"decode", "convert", "patchify", "mask"}) {
    stage_seconds.Add({{"stage", stage}});
  }
  for (const char* reason : {"deadline_exceeded", "identity", "job", "expired"}) {
    leases_failed.Add({{"reason", reason}});
  }
  for (const char* reason : {"stale", "consumed"}) leases_dropped.Add({{"reason", reason}});
  for (const char* rpc : {"RegisterWorker", "Heartbeat", "LeaseBatches", "ReportProgress"}) {
    coordinator_errors.Add({{"rpc", rpc}});
  }
}

void DataworkerMetrics::BatchProduced(const ProducedBatch& batch, double seconds) {
  const double clips = static_cast<double>(batch.clips.size());
  clips_produced.Increment(clips);
  batches_produced.Increment();
  batch_seconds.Observe(seconds);
  if (!batch.sample_decode_s.empty()) {
    for (double s : batch.sample_decode_s) decode_seconds.Observe(s);
  } else if (clips > 0) {  // producers that only know the batch total
    const double per_clip = batch.decode_s / clips;
    for (size_t i = 0; i < batch.clips.size(); ++i) decode_seconds.Observe(per_clip);
  }
  stage_seconds.Add({{"stage", "decode"}}).Increment(batch.decode_s);
  stage_seconds.Add({{"stage", "convert"}}).Increment(batch.convert_s);
  stage_seconds.Add({{"stage", "patchify"}}).Increment(batch.patchify_s);
  stage_seconds.Add({{"stage", "mask"}}).Increment(batch.mask_s);
  producer_busy_seconds.Increment(seconds);
}

void DataworkerMetrics::BadVideo(const std::string& reason) {
  bad_videos.Add({{"reason", reason}}).Increment();
}

void DataworkerMetrics::LeaseFailed(const std::string& reason) {
  leases_failed.Add({{"reason", reason}}).Increment();
}

void DataworkerMetrics::LeaseDropped(const std::string& reason) {
  leases_dropped.Add({{"reason", reason}}).Increment();
}

void DataworkerMetrics::CoordinatorError(const std::string& rpc) {
  coordinator_errors.Add({{"rpc", rpc}}).Increment();
}

}  // namespace vjepa::dataworker
