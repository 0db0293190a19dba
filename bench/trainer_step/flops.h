// The FLOPs of one V-JEPA step, counted one fixed way (the trainer-step benchmark's definition):
// target forward + 3 x (context-encoder forward x mask configs + predictor forward x mask
// configs); 2*M*N*K per matrix product, plus QK^T and AV at the actual (truncated) lengths; no
// target backward. Elementwise work (norms, GELU, softmax, the optimizer) is not counted.
#ifndef VJEPA_BENCH_TRAINER_STEP_FLOPS_H_
#define VJEPA_BENCH_TRAINER_STEP_FLOPS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "services/trainer/model/config.h"

namespace vjepa::bench {

struct FlopTerm {
  std::string name;
  double flops = 0;
};

// Forward FLOPs of the encoder on `n` tokens per sample: patch embedding + blocks.
double EncoderForwardFlops(const model::VitConfig& v, int64_t batch, int64_t n);
// Attention (QK^T and AV) part of the above.
double EncoderAttentionFlops(const model::VitConfig& v, int64_t batch, int64_t n);
// Forward FLOPs of the predictor on n_ctx context and n_tgt target tokens per sample.
double PredictorForwardFlops(const model::VitConfig& v, const model::PredictorConfig& p,
                             int64_t batch, int64_t n_ctx, int64_t n_tgt);
double PredictorAttentionFlops(const model::PredictorConfig& p, int64_t batch, int64_t n_ctx,
                               int64_t n_tgt);

struct MaskLengths {
  int64_t context = 0;
  int64_t target = 0;
};

// Every term of one step, and their sum as the last entry ("total").
std::vector<FlopTerm> StepFlops(const model::VitConfig& v, const model::PredictorConfig& p,
                                int64_t batch, const std::vector<MaskLengths>& masks);

}  // namespace vjepa::bench

#endif  // VJEPA_BENCH_TRAINER_STEP_FLOPS_H_
