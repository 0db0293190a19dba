#include "services/trainer/vjepa/schedules.h"

#include "gtest/gtest.h"

namespace vjepa::jepa {
namespace {

TEST(Schedules, MatchTheReferenceAtUpdates1_12000_90000) {
  // The vit_large defaults: warmup 40 x 300, T = int(1.25 x 300 x 300) (docs/vjepa-spec.md §9).
  ScheduleConfig c;
  struct Case {
    int64_t update;
    double lr, wd, momentum;
  } cases[] = {
      {1, 2.000354e-4, 0.0400000, 0.998},
      {12000, 6.250000e-4, 0.050012, 0.99821332},
      {90000, 7.504222e-5, 0.365623, 0.99959998},
  };
  for (const Case& k : cases) {
    ScheduleValues v = ScheduleAt(c, k.update);
    EXPECT_NEAR(v.lr, k.lr, k.lr * 1e-6) << "update " << k.update;
    EXPECT_NEAR(v.wd, k.wd, 1e-6) << "update " << k.update;
    EXPECT_NEAR(v.momentum, k.momentum, 1e-8) << "update " << k.update;
  }
  // The EMA momentum is exact: 0.998 + (s - 1) * 0.002 / 112500.
  EXPECT_DOUBLE_EQ(ScheduleAt(c, 56251).momentum, 0.998 + 56250 * 0.002 / 112500);
  // Warm-up is linear and the cosine never goes below the final value.
  EXPECT_NEAR(ScheduleAt(c, 6000).lr, 2e-4 + 0.5 * 4.25e-4, 1e-12);
  EXPECT_GE(ScheduleAt(c, 112500).lr, 1e-6);
  EXPECT_NEAR(ScheduleAt(c, 112500).lr, 1e-6, 1e-12);
  EXPECT_NEAR(ScheduleAt(c, 112500).wd, 0.4, 1e-12);
}

TEST(Schedules, ScaleWithAShortJob) {
  // A 200-step job: warm-up 27, T = 250.
  ScheduleConfig c;
  c.warmup_steps = 27;
  c.length = 250;
  EXPECT_NEAR(ScheduleAt(c, 27).lr, 6.25e-4, 1e-12);
  EXPECT_LT(ScheduleAt(c, 200).lr, 6.25e-4);
  EXPECT_NEAR(ScheduleAt(c, 251).momentum, 1.0, 1e-12);
}

}  // namespace
}  // namespace vjepa::jepa
