#include "services/trainer/vjepa/schedules.h"

#include <algorithm>
#include <cmath>

namespace vjepa::jepa {

ScheduleValues ScheduleAt(const ScheduleConfig& c, int64_t update) {
  ScheduleValues v;
  const double s = static_cast<double>(update);
  const double pi = std::acos(-1.0);
  // LR: linear warm-up for updates < warmup, then cosine from peak to final over T - warmup.
  if (update < c.warmup_steps) {
    v.lr = c.lr_start + (s / c.warmup_steps) * (c.lr_peak - c.lr_start);
  } else {
    const double progress = (s - c.warmup_steps) / std::max<int64_t>(1, c.length - c.warmup_steps);
    v.lr = std::max(c.lr_final,
                    c.lr_final + (c.lr_peak - c.lr_final) * 0.5 * (1.0 + std::cos(pi * progress)));
  }
  // WD: cosine from start to final over T, clamped at final.
  const double wd_progress = s / static_cast<double>(c.length);
  v.wd = c.wd_final + (c.wd_start - c.wd_final) * 0.5 * (1.0 + std::cos(pi * wd_progress));
  v.wd = c.wd_final <= c.wd_start ? std::max(c.wd_final, v.wd) : std::min(c.wd_final, v.wd);
  // EMA: linear; update #s takes the value before the generator advances, index s - 1.
  v.momentum =
      c.ema_start + (s - 1.0) * (c.ema_final - c.ema_start) / static_cast<double>(c.length);
  return v;
}

}  // namespace vjepa::jepa
