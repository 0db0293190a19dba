#include "services/trainer/model/sincos.h"

#include <cmath>
#include <vector>

namespace vjepa::model {

torch::Tensor SinCos3d(int64_t dim, int64_t t, int64_t h, int64_t w, bool uniform_power) {
  int64_t dt, dh, dw;
  if (uniform_power) {
    dt = dh = dw = 2 * ((dim + 5) / 6);
  } else {
    dt = dim / 2;
    dh = dw = dim / 4;
  }
  const int64_t total = dt + dh + dw;
  std::vector<double> table(t * h * w * total);
  // One axis part: channels [offset, offset+d) of every row, from that row's coordinate.
  auto fill = [&](int64_t offset, int64_t d, auto coordinate) {
    const int64_t half = d / 2;
    for (int64_t row = 0; row < t * h * w; ++row) {
      const double pos = static_cast<double>(coordinate(row));
      double* out = &table[row * total + offset];
      for (int64_t k = 0; k < half; ++k) {
        const double omega = 1.0 / std::pow(10000.0, static_cast<double>(k) / (d / 2.0));
        out[k] = std::sin(pos * omega);
        out[half + k] = std::cos(pos * omega);
      }
    }
  };
  fill(0, dt, [&](int64_t row) { return row / (h * w); });
  fill(dt, dh, [&](int64_t row) { return (row / w) % h; });
  fill(dt + dh, dw, [&](int64_t row) { return row % w; });
  torch::Tensor full =
      torch::from_blob(table.data(), {t * h * w, total}, torch::kFloat64).to(torch::kFloat32);
  return full.narrow(1, 0, dim).clone();
}

}  // namespace vjepa::model
