// vjepa-bench-trainer-step: the time of one V-JEPA training step against the sgemm ceiling
// measured in the same process (see --help). One JSON line per config on stdout (with --json),
// the human table on stderr; with several configs the last line is the aggregate, "config": "all".
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/trainer_step/flops.h"
#include "common/core/reexec.h"
#include "common/masking/mask.h"
#include "services/trainer/vjepa/device.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::bench {
namespace {

constexpr char kUsage[] =
    R"(vjepa-bench-trainer-step: median seconds of a V-JEPA training step, its FLOPs, and the ratio
of achieved GFLOP/s to the matrix-product rate measured in the same process: the best of 5
2048x2048 torch::mm on the CPU, of 10 8192x8192 on a GPU, in the step's precision (so on a GPU
in bf16 the ratio is the model FLOP utilisation, MFU).

Usage: vjepa-bench-trainer-step [--config micro,tiny] [--json] [--steps N] [--warmup N]
                                [--threads N] [--device cpu|cuda[:N]] [--precision P]
                                [--check] [--check-steps N]
  --config     comma-separated: micro (vit_tiny, 8x112x112, batch 8, predictor 6x192x3),
               tiny (vit_tiny, 16x224x224, batch 2, same predictor), large (vit_large,
               16x224x224, batch 24, predictor 12x384x16). Default: micro,tiny.
  --json       one JSON object per config on stdout (keys: config, step_s, clips_per_s,
               gflop_per_step, achieved_gflops, ceiling_gflops, ratio, peak_rss_mb, device,
               precision, the time split and every FLOP term); with several configs a last line
               with "config": "all".
  --steps      timed steps after the warm-up (default 7, at least 5)
  --warmup     untimed steps first (default 2)
  --threads    torch intra-op threads (default: all cores)
  --device     cpu (default) or cuda / cuda:N
  --precision  float32 or bfloat16 (bf16 autocast, float32 master weights); default bfloat16
               on cuda, float32 on cpu
  --check      instead of timing: train the micro config for --check-steps steps (default 3)
               on --device in --precision and on the CPU in float32, from the same weights on
               the same batches, and compare the losses (bf16 tolerance: 3% relative); prints
               one JSON line ("config": "check", "pass": true|false), exits 1 if they differ
On a GPU the batches are copied from pinned host memory on a copy stream while the previous
step computes, as the trainer does, and the time split comes from 2 extra steps that wait for the
device at each phase. Masks come from the real multiblock3d generator (both default mask
configs), inputs are random uint8 tokens. FLOPs: target forward + 3 x (context encoder +
predictor forwards), 2*M*N*K per matrix product plus QK^T and AV at the truncated lengths.
)";

struct Options {
  std::vector<std::string> configs = {"micro", "tiny"};
  bool json = false;
  int steps = 7;
  int warmup = 2;
  int threads = 0;
  std::string device = "cpu";
  std::string precision;  // empty: bfloat16 on cuda, float32 on cpu
  bool check = false;
  int check_steps = 3;
};

struct BenchConfig {
  std::string name;
  std::string preset;
  int64_t frames, crop, batch;
  model::PredictorConfig predictor;
};

bool FindConfig(const std::string& name, BenchConfig* out) {
  model::PredictorConfig small;
  small.width = 192;
  small.depth = 6;
  small.heads = 3;
  model::PredictorConfig large;  // 384 wide, 12 deep, 16 heads
  const BenchConfig configs[] = {
      {"micro", "vit_tiny", 8, 112, 8, small},
      {"tiny", "vit_tiny", 16, 224, 2, small},
      {"large", "vit_large", 16, 224, 24, large},
  };
  for (const auto& c : configs) {
    if (c.name == name) {
      *out = c;
      return true;
    }
  }
  return false;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double PeakRssMb() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_maxrss / 1024.0;
}

// The matrix-product ceiling in GFLOP/s: the best of 5 products of 2048^2 on the CPU, of 10 of
// 8192^2 on a GPU, in `dtype`, after warm-ups.
double CeilingGflops(torch::Device device, torch::ScalarType dtype) {
  const int64_t n = device.is_cpu() ? 2048 : 8192;
  const int reps = device.is_cpu() ? 5 : 10;
  const auto opts = torch::TensorOptions().device(device).dtype(dtype);
  torch::Tensor a = torch::randn({n, n}, opts);
  torch::Tensor b = torch::randn({n, n}, opts);
  torch::Tensor c;
  for (int i = 0; i < 3; ++i) c = torch::mm(a, b);
  jepa::SynchronizeDevice(device);
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const double t0 = Now();
    c = torch::mm(a, b);
    jepa::SynchronizeDevice(device);
    best = std::min(best, Now() - t0);
  }
  return 2.0 * n * n * n / best / 1e9;
}

std::string Json(const std::map<std::string, std::string>& fields) {
  std::ostringstream out;
  out << "{";
  bool first = true;
  // "config" first, then the rest in key order.
  if (auto it = fields.find("config"); it != fields.end()) {
    out << "\"config\": " << it->second;
    first = false;
  }
  for (const auto& [k, v] : fields) {
    if (k == "config") continue;
    out << (first ? "" : ", ") << "\"" << k << "\": " << v;
    first = false;
  }
  out << "}";
  return out.str();
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// One config's trainer and its inputs: random uint8 tokens and the real masks of each step.
class Workload {
 public:
  static core::StatusOr<std::unique_ptr<Workload>> Create(const BenchConfig& bc,
                                                          const jepa::TrainerConfig& tc,
                                                          torch::Device device) {
    std::unique_ptr<Workload> w(new Workload);
    w->bc_ = bc;
    w->tc_ = tc;
    auto trainer = jepa::Trainer::Create(tc, device);
    if (!trainer.ok()) return trainer.status();
    w->trainer = std::move(trainer).value();
    const masking::Grid grid{static_cast<int>(tc.vit.grid_t()), static_cast<int>(tc.vit.grid_h()),
                             static_cast<int>(tc.vit.grid_w())};
    masking::MaskConfig short_range;  // 8 blocks of 0.15
    masking::MaskConfig long_range;
    long_range.num_blocks = 2;
    long_range.spatial_scale = {0.7, 0.7};
    for (const auto& mc : {short_range, long_range}) {
      auto g = masking::MakeMaskGenerator(mc, grid);
      if (!g.ok()) return core::Status(g.status().code(), "masks: " + g.status().message());
      w->generators_.push_back(std::move(g).value());
    }
    w->tokens_ = torch::randint(0, 256, {bc.batch, tc.vit.num_tokens(), tc.vit.token_values()},
                                torch::kUInt8);
    return w;
  }

  // The host batch of step s, with its mask lengths and attention FLOPs.
  core::StatusOr<jepa::Batch> BatchOf(int s, std::vector<MaskLengths>* lengths, double* attn) {
    jepa::Batch batch;
    batch.tokens = tokens_;
    *attn = EncoderAttentionFlops(tc_.vit, bc_.batch, tc_.vit.num_tokens());
    for (int m = 0; m < 2; ++m) {
      auto masks = generators_[m]->Generate({234, 0, s}, m, static_cast<int>(bc_.batch));
      if (!masks.ok())
        return core::Status(masks.status().code(), "masks: " + masks.status().message());
      auto to_tensor = [&](const std::vector<int32_t>& v, int len) {
        return torch::from_blob(const_cast<int32_t*>(v.data()), {bc_.batch, len}, torch::kInt32)
            .to(torch::kInt64);
      };
      batch.masks.push_back({to_tensor(masks->context, masks->context_length),
                             to_tensor(masks->target, masks->target_length)});
      lengths->push_back({masks->context_length, masks->target_length});
      *attn += 3 * (EncoderAttentionFlops(tc_.vit, bc_.batch, masks->context_length) +
                    PredictorAttentionFlops(tc_.predictor, bc_.batch, masks->context_length,
                                            masks->target_length));
    }
    return batch;
  }

  std::unique_ptr<jepa::Trainer> trainer;

 private:
  Workload() = default;
  BenchConfig bc_;
  jepa::TrainerConfig tc_;
  std::vector<std::unique_ptr<masking::MaskGenerator>> generators_;
  torch::Tensor tokens_;
};

jepa::TrainerConfig TrainerConfigOf(const BenchConfig& bc, jepa::Precision precision) {
  jepa::TrainerConfig tc;
  tc.vit = *model::VitPreset(bc.preset);
  tc.vit.frames = bc.frames;
  tc.vit.crop = bc.crop;
  tc.predictor = bc.predictor;
  tc.precision = precision;
  return tc;
}

// --check: the micro config on `device` in `precision` against the CPU in float32.
int RunCheck(const Options& o, torch::Device device, jepa::Precision precision) {
  BenchConfig bc;
  FindConfig("micro", &bc);
  std::vector<double> losses[2];
  const torch::Device devices[2] = {torch::Device(torch::kCPU), device};
  const jepa::Precision precisions[2] = {jepa::Precision::kFloat32, precision};
  for (int run = 0; run < 2; ++run) {
    torch::manual_seed(234);  // the same weights and tokens in both runs
    auto w = Workload::Create(bc, TrainerConfigOf(bc, precisions[run]), devices[run]);
    if (!w.ok()) {
      std::cerr << "vjepa-bench-trainer-step: --check: " << w.status() << "\n";
      return 1;
    }
    // The batches go through the uploader, staged before their steps run, as in training: a wrong
    // stream order would show as a loss that differs.
    jepa::BatchUploader uploader(devices[run]);
    std::vector<jepa::StagedBatch> staged;
    for (int s = 0; s < o.check_steps; ++s) {
      std::vector<MaskLengths> lengths;
      double attn = 0;
      auto batch = (*w)->BatchOf(s, &lengths, &attn);
      if (!batch.ok()) {
        std::cerr << "vjepa-bench-trainer-step: --check: " << batch.status() << "\n";
        return 1;
      }
      staged.push_back(uploader.Stage(*batch));
    }
    for (int s = 0; s < o.check_steps; ++s) {
      auto stats = (*w)->trainer->Step(uploader.Ready(std::move(staged[s])));
      if (!stats.ok()) {
        std::cerr << "vjepa-bench-trainer-step: --check step " << s << ": " << stats.status()
                  << "\n";
        return 1;
      }
      losses[run].push_back(stats->loss);
      std::cerr << "check " << devices[run] << " " << jepa::PrecisionName(precisions[run])
                << " step " << s << ": loss " << Num(stats->loss) << "\n";
    }
  }
  constexpr double kTolerance = 0.03;
  double worst = 0;
  std::string cpu = "[", dev = "[";
  for (size_t i = 0; i < losses[0].size(); ++i) {
    worst = std::max(worst, std::abs(losses[1][i] - losses[0][i]) / std::abs(losses[0][i]));
    cpu += (i ? ", " : "") + Num(losses[0][i]);
    dev += (i ? ", " : "") + Num(losses[1][i]);
  }
  const bool pass = std::isfinite(worst) && worst <= kTolerance;
  const std::string line =
      Json({{"config", "\"check\""},
            {"device", "\"" + device.str() + "\""},
            {"precision", std::string("\"") + jepa::PrecisionName(precision) + "\""},
            {"steps", std::to_string(o.check_steps)},
            {"loss_cpu_float32", cpu + "]"},
            {"loss_device", dev + "]"},
            {"max_rel_diff", Num(worst)},
            {"tolerance", Num(kTolerance)},
            {"pass", pass ? "true" : "false"}});
  std::cout << line << "\n" << std::flush;
  std::cerr << "check: largest relative loss difference " << Num(worst) << " (tolerance "
            << Num(kTolerance) << "): " << (pass ? "pass" : "FAIL") << "\n";
  return pass ? 0 : 1;
}

int Run(const Options& o) {
  auto parsed_device = jepa::ParseDevice(o.device);
  if (!parsed_device.ok()) {
    std::cerr << "vjepa-bench-trainer-step: --device: " << parsed_device.status().message() << "\n";
    return 2;
  }
  const torch::Device device = *parsed_device;
  jepa::Precision precision =
      device.is_cpu() ? jepa::Precision::kFloat32 : jepa::Precision::kBfloat16;
  if (!o.precision.empty()) {
    auto p = jepa::ParsePrecision(o.precision);
    if (!p.ok()) {
      std::cerr << "vjepa-bench-trainer-step: --precision: " << p.status().message() << "\n";
      return 2;
    }
    precision = *p;
  }
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
  if (o.check) return RunCheck(o, device, precision);
  torch::manual_seed(234);
  const torch::ScalarType dtype =
      precision == jepa::Precision::kBfloat16 ? torch::kBFloat16 : torch::kFloat32;
  const double ceiling = CeilingGflops(device, dtype);
  const std::string ceiling_kind = std::string(jepa::PrecisionName(precision)) + " " +
                                   (device.is_cpu() ? "2048" : "8192") + "^2 mm";
  std::cerr << "ceiling: " << Num(ceiling) << " GFLOP/s (" << ceiling_kind << ", " << threads
            << " threads, " << device << ")\n";

  std::vector<std::string> lines;
  double all_flops = 0, all_seconds = 0;
  for (const std::string& name : o.configs) {
    BenchConfig bc;
    if (!FindConfig(name, &bc)) {
      std::cerr << "vjepa-bench-trainer-step: --config: unknown config \"" << name
                << "\" (micro, tiny, large)\n";
      return 2;
    }
    if (name == "large" && device.is_cpu()) {
      std::cerr << "vjepa-bench-trainer-step: config large runs on a GPU only (--device cuda)\n";
      return 2;
    }
    auto created = Workload::Create(bc, TrainerConfigOf(bc, precision), device);
    if (!created.ok()) {
      std::cerr << "vjepa-bench-trainer-step: " << created.status() << "\n";
      return 1;
    }
    Workload& w = **created;
    const jepa::TrainerConfig& tc = w.trainer->config();
    jepa::BatchUploader uploader(device);
    std::vector<double> step_s, flops, target_s, context_s, predictor_s, backward_s, optimizer_s;
    std::vector<double> attention_flops;
    std::vector<double> ctx_len[2], tgt_len[2];
    // On a GPU the last 2 steps wait for the device at each phase, for the time split.
    const int split_steps = device.is_cpu() ? 0 : 2;
    const int total = o.warmup + o.steps + split_steps;
    std::vector<MaskLengths> next_lengths;
    double next_attn = 0;
    auto stage = [&](int s) -> core::StatusOr<jepa::StagedBatch> {
      next_lengths.clear();
      auto batch = w.BatchOf(s, &next_lengths, &next_attn);
      if (!batch.ok()) return batch.status();
      return uploader.Stage(*batch);
    };
    // On a GPU the next batch is made and staged on another thread while this step runs.
    const auto policy = device.is_cpu() ? std::launch::deferred : std::launch::async;
    auto pending = std::async(policy, stage, 0);
    core::StatusOr<jepa::StagedBatch> staged = core::InternalError("nothing staged");
    for (int s = 0; s < total; ++s) {
      staged = pending.get();
      if (!staged.ok()) break;
      const std::vector<MaskLengths> lengths = next_lengths;
      const double attn = next_attn;
      const bool split = s >= o.warmup + o.steps;
      w.trainer->set_synchronous_timing(split);
      const double t0 = Now();
      jepa::Batch batch = uploader.Ready(std::move(staged).value());
      if (s + 1 < total) pending = std::async(policy, stage, s + 1);
      auto stats = w.trainer->Step(batch);
      const double dt = Now() - t0;
      if (!stats.ok()) {
        std::cerr << "vjepa-bench-trainer-step: step: " << stats.status() << "\n";
        return 1;
      }
      std::cerr << name << " step " << s << (s < o.warmup ? " (warm-up)" : "")
                << (split ? " (time split)" : "") << ": " << Num(dt) << " s, loss "
                << Num(stats->loss) << "\n";
      if (s < o.warmup) continue;
      if (split_steps == 0 || split) {
        target_s.push_back(stats->target_s);
        context_s.push_back(stats->context_s);
        predictor_s.push_back(stats->predictor_s);
        backward_s.push_back(stats->backward_s);
        optimizer_s.push_back(stats->optimizer_s);
      }
      if (split) continue;
      step_s.push_back(dt);
      flops.push_back(StepFlops(tc.vit, tc.predictor, bc.batch, lengths).back().flops);
      attention_flops.push_back(attn);
      for (int m = 0; m < 2; ++m) {
        ctx_len[m].push_back(static_cast<double>(lengths[m].context));
        tgt_len[m].push_back(static_cast<double>(lengths[m].target));
      }
    }
    if (!staged.ok()) {
      std::cerr << "vjepa-bench-trainer-step: " << staged.status() << "\n";
      return 1;
    }
    // FLOP terms at the median mask lengths.
    std::vector<MaskLengths> median_lengths = {
        {static_cast<int64_t>(Median(ctx_len[0])), static_cast<int64_t>(Median(tgt_len[0]))},
        {static_cast<int64_t>(Median(ctx_len[1])), static_cast<int64_t>(Median(tgt_len[1]))}};
    auto terms = StepFlops(tc.vit, tc.predictor, bc.batch, median_lengths);
    double mean_flops = 0, mean_attn = 0;
    for (size_t i = 0; i < flops.size(); ++i) {
      mean_flops += flops[i] / flops.size();
      mean_attn += attention_flops[i] / flops.size();
    }
    const double step = Median(step_s);
    const double achieved = mean_flops / step / 1e9;
    all_flops += mean_flops;
    all_seconds += step;
    std::map<std::string, std::string> f = {
        {"config", "\"" + name + "\""},
        {"step_s", Num(step)},
        {"clips_per_s", Num(bc.batch / step)},
        {"gflop_per_step", Num(mean_flops / 1e9)},
        {"achieved_gflops", Num(achieved)},
        {"ceiling_gflops", Num(ceiling)},
        {"ceiling", "\"" + ceiling_kind + "\""},
        {"ratio", Num(achieved / ceiling)},
        {"peak_rss_mb", Num(PeakRssMb())},
        {"threads", std::to_string(threads)},
        {"device", "\"" + device.str() + "\""},
        {"precision", std::string("\"") + jepa::PrecisionName(precision) + "\""},
        {"pinned_mb", Num(uploader.pinned_bytes() / 1e6)},
        {"batch", std::to_string(bc.batch)},
        {"target_s", Num(Median(target_s))},
        {"context_encoder_s", Num(Median(context_s))},
        {"predictor_s", Num(Median(predictor_s))},
        {"backward_s", Num(Median(backward_s))},
        {"optimizer_ema_s", Num(Median(optimizer_s))},
        {"attention_flop_share", Num(mean_attn / mean_flops)},
        {"context_len", "[" + Num(Median(ctx_len[0])) + ", " + Num(Median(ctx_len[1])) + "]"},
        {"target_len", "[" + Num(Median(tgt_len[0])) + ", " + Num(Median(tgt_len[1])) + "]"},
    };
    for (const auto& t : terms) f["gflop_" + t.name] = Num(t.flops / 1e9);
    lines.push_back(Json(f));
    std::fprintf(stderr,
                 "%-6s step %.4f s  %.2f clips/s  %.3f GFLOP/step  %.2f GFLOP/s  ratio %.3f  "
                 "(target %.4f, context %.4f, predictor %.4f, backward %.4f, optim+EMA %.4f s; "
                 "attention %.0f%% of FLOPs)\n",
                 name.c_str(), step, bc.batch / step, mean_flops / 1e9, achieved,
                 achieved / ceiling, Median(target_s), Median(context_s), Median(predictor_s),
                 Median(backward_s), Median(optimizer_s), 100 * mean_attn / mean_flops);
  }
  if (lines.size() > 1) {
    const double achieved = all_flops / all_seconds / 1e9;
    lines.push_back(Json({{"config", "\"all\""},
                          {"achieved_gflops", Num(achieved)},
                          {"ceiling_gflops", Num(ceiling)},
                          {"ratio", Num(achieved / ceiling)},
                          {"peak_rss_mb", Num(PeakRssMb())},
                          {"configs", std::to_string(o.configs.size())}}));
  }
  if (o.json) {
    for (const auto& l : lines) std::cout << l << "\n";
    std::cout << std::flush;
  }
  return 0;
}

}  // namespace
}  // namespace vjepa::bench

int main(int argc, char** argv) {
  vjepa::core::ReexecWithPassiveOmp(argv);
  vjepa::bench::Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    auto take = [&](const char* flag) {
      const std::string f = flag;
      if (a == f && i + 1 < argc) {
        value = argv[++i];
        return true;
      }
      if (a.rfind(f + "=", 0) == 0) {
        value = a.substr(f.size() + 1);
        return true;
      }
      return false;
    };
    auto as_int = [&](const char* flag, int min) {
      char* end = nullptr;
      long v = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < min || v > 100000) {
        std::cerr << "vjepa-bench-trainer-step: " << flag << ": must be an integer >= " << min
                  << ", got \"" << value << "\"\n";
        std::exit(2);
      }
      return static_cast<int>(v);
    };
    if (a == "--help" || a == "-h") {
      std::cout << vjepa::bench::kUsage;
      return 0;
    } else if (a == "--json") {
      o.json = true;
    } else if (take("--config")) {
      o.configs.clear();
      std::stringstream ss(value);
      for (std::string c; std::getline(ss, c, ',');) o.configs.push_back(c == "all" ? "micro" : c);
      if (value == "all") o.configs = {"micro", "tiny"};
    } else if (take("--steps")) {
      o.steps = as_int("--steps", 5);
    } else if (take("--warmup")) {
      o.warmup = as_int("--warmup", 0);
    } else if (take("--threads")) {
      o.threads = as_int("--threads", 1);
    } else if (take("--device")) {
      o.device = value;
    } else if (take("--precision")) {
      o.precision = value;
    } else if (a == "--check") {
      o.check = true;
    } else if (take("--check-steps")) {
      o.check_steps = as_int("--check-steps", 1);
    } else {
      std::cerr << "vjepa-bench-trainer-step: unknown argument \"" << a << "\"; see --help\n";
      return 2;
    }
  }
  return vjepa::bench::Run(o);
}
