// Fixed 3-D sin-cos positional embeddings (docs/vjepa-spec.md §1, "sincos layout").
#ifndef VJEPA_SERVICES_TRAINER_MODEL_SINCOS_H_
#define VJEPA_SERVICES_TRAINER_MODEL_SINCOS_H_

#include <torch/types.h>

#include <cstdint>

namespace vjepa::model {

// [t*h*w, dim] float32, rows in (t, h, w) row-major order. With uniform_power each axis gets
// 2*ceil(dim/6) channels, concatenated [t, h, w] and truncated to dim; without it t gets dim/2
// and h, w dim/4 each. Each axis part is [sin(pos*w_k), cos(pos*w_k)], w_k = 10000^(-k/(d/2)).
// Computed in double like the reference, then rounded to float.
torch::Tensor SinCos3d(int64_t dim, int64_t t, int64_t h, int64_t w, bool uniform_power);

}  // namespace vjepa::model

#endif  // VJEPA_SERVICES_TRAINER_MODEL_SINCOS_H_
