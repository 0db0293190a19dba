#include "bench/trainer_step/flops.h"

namespace vjepa::bench {
namespace {

// One pre-norm block on n tokens of width d, MLP ratio r: qkv, proj, fc1, fc2 and attention.
double BlockFlops(double b, double n, double d, double r) {
  const double linear = 2 * n * d * (3 * d) + 2 * n * d * d + 2 * 2 * n * d * (r * d);
  return b * (linear + 4 * n * n * d);
}

}  // namespace

double EncoderForwardFlops(const model::VitConfig& v, int64_t batch, int64_t n) {
  const double d = v.embed_dim;
  const double patch = 2.0 * batch * n * v.token_values() * d;
  return patch + v.depth * BlockFlops(batch, n, d, v.mlp_ratio);
}

double EncoderAttentionFlops(const model::VitConfig& v, int64_t batch, int64_t n) {
  return v.depth * 4.0 * batch * n * n * v.embed_dim;
}

double PredictorForwardFlops(const model::VitConfig& v, const model::PredictorConfig& p,
                             int64_t batch, int64_t n_ctx, int64_t n_tgt) {
  const double w = p.width, out = p.output_dim > 0 ? p.output_dim : v.embed_dim;
  const double embed = 2.0 * batch * n_ctx * v.embed_dim * w;
  const double proj = 2.0 * batch * n_tgt * w * out;
  return embed + p.depth * BlockFlops(batch, n_ctx + n_tgt, w, p.mlp_ratio) + proj;
}

double PredictorAttentionFlops(const model::PredictorConfig& p, int64_t batch, int64_t n_ctx,
                               int64_t n_tgt) {
  const double n = n_ctx + n_tgt;
  return p.depth * 4.0 * batch * n * n * p.width;
}

std::vector<FlopTerm> StepFlops(const model::VitConfig& v, const model::PredictorConfig& p,
                                int64_t batch, const std::vector<MaskLengths>& masks) {
  std::vector<FlopTerm> terms;
  terms.push_back({"target_forward", EncoderForwardFlops(v, batch, v.num_tokens())});
  double total = terms.back().flops;
  for (size_t i = 0; i < masks.size(); ++i) {
    const std::string k = std::to_string(i);
    terms.push_back(
        {"context_forward_x3_mask" + k, 3 * EncoderForwardFlops(v, batch, masks[i].context)});
    terms.push_back({"predictor_forward_x3_mask" + k,
                     3 * PredictorForwardFlops(v, p, batch, masks[i].context, masks[i].target)});
    total += terms[terms.size() - 2].flops + terms.back().flops;
  }
  terms.push_back({"total", total});
  return terms;
}

}  // namespace vjepa::bench
