// The V-JEPA schedules (docs/vjepa-spec.md §4, §9): warmup-cosine LR, cosine WD, linear EMA
// momentum, all over a schedule length T = int(schedule_scale * steps) that training stops short
// of. Updates count from 1: update #1 uses lr start + (peak - start)/warmup, wd start, momentum
// ema start.
#ifndef VJEPA_SERVICES_TRAINER_VJEPA_SCHEDULES_H_
#define VJEPA_SERVICES_TRAINER_VJEPA_SCHEDULES_H_

#include <cstdint>

namespace vjepa::jepa {

struct ScheduleConfig {
  int64_t warmup_steps = 12000;
  int64_t length = 112500;  // T
  double lr_start = 2.0e-4, lr_peak = 6.25e-4, lr_final = 1.0e-6;
  double wd_start = 0.04, wd_final = 0.4;
  double ema_start = 0.998, ema_final = 1.0;
};

struct ScheduleValues {
  double lr = 0;
  double wd = 0;
  double momentum = 0;
};

// The values used by update number `update` (1-based).
ScheduleValues ScheduleAt(const ScheduleConfig& config, int64_t update);

}  // namespace vjepa::jepa

#endif  // VJEPA_SERVICES_TRAINER_VJEPA_SCHEDULES_H_
