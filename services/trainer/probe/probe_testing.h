// Builders shared by the probe tests.
#ifndef VJEPA_SERVICES_TRAINER_PROBE_PROBE_TESTING_H_
#define VJEPA_SERVICES_TRAINER_PROBE_PROBE_TESTING_H_

#include <gtest/gtest.h>

#include <cstdint>

#include "services/trainer/probe/probe_classifier.h"

namespace vjepa::probe {

inline ProbeOptions TestProbeOptions(ProbePooling pooling, int64_t dim, int64_t heads,
                                     int64_t classes, uint64_t seed = 0) {
  ProbeOptions o;
  o.pooling = pooling;
  o.embed_dim = dim;
  o.num_heads = heads;
  o.num_classes = classes;
  o.seed = seed;
  return o;
}

// The probe of `options`; a test failure when it cannot be made.
inline ProbeClassifier MustMakeProbe(const ProbeOptions& options) {
  core::StatusOr<ProbeClassifier> made = MakeProbeClassifier(options);
  EXPECT_TRUE(made.ok()) << made.status();
  return *made;
}

}  // namespace vjepa::probe

#endif  // VJEPA_SERVICES_TRAINER_PROBE_PROBE_TESTING_H_
