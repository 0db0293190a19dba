#include "services/trainer/service/training_run.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <initializer_list>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/service/distributed.h"
#include "services/trainer/service/run_util.h"
#include "services/trainer/service/trainer_config.h"
#include "services/trainer/vjepa/checkpointing.h"
#include "services/trainer/vjepa/device.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::trainer {
namespace {

// A JSON string literal.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

std::string CheckpointPath(const std::string& dir, int64_t step) {
  return (std::filesystem::path(dir) / absl::StrCat("step-", step, ".safetensors")).string();
}

absl::StatusOr<std::string> NewestCheckpoint(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat("checkpoint dir ", dir, ": ", ec.message()));
  }
  int64_t best = -1;
  std::string best_path;
  for (const auto& entry : it) {
    const std::string filename = entry.path().filename().string();
    absl::string_view name(filename);
    if (!absl::ConsumePrefix(&name, "step-") || !absl::ConsumeSuffix(&name, ".safetensors")) {
      continue;
    }
    int64_t step = 0;
    if (!absl::SimpleAtoi(name, &step) || step < 0) continue;
    if (step > best) {
      best = step;
      best_path = entry.path().string();
    }
  }
  if (best < 0) {
    return absl::NotFoundError(absl::StrCat("checkpoint dir ", dir, ": no step-<S>.safetensors"));
  }
  return best_path;
}

TrainingRun::TrainingRun(TrainingRunOptions options, std::shared_ptr<metrics::Registry> registry)
    : options_(std::move(options)),
      registry_(std::move(registry)),
      owned_metrics_(std::make_unique<TrainerMetrics>(*registry_)),
      metrics_(*owned_metrics_) {}

TrainingRun::TrainingRun(TrainingRunOptions options, TrainerMetrics* metrics)
    : options_(std::move(options)), metrics_(*metrics) {}

TrainingRun::~TrainingRun() = default;

void TrainingRun::RequestStop() {
  stop_ = true;
  data_.Stop();
}

void TrainingRun::Abort() {
  abort_ = true;
  RequestStop();
}

void TrainingRun::AddDataworker(const std::string& address) { data_.AddAddress(address); }

absl::StatusOr<TrainingResult> TrainingRun::Run() {
  const spec::JobSpec& spec = options_.spec;
  absl::StatusOr<jepa::TrainerConfig> config = TrainerConfigFromSpec(spec);
  if (!config.ok()) return Annotate(config.status(), "job spec");
  const int64_t steps = options_.steps > 0 ? options_.steps : spec.optim.steps;

  torch::Device device(torch::kCPU);
  if (spec.resources.device == spec::Device::kCuda) {
    core::StatusOr<torch::Device> d = jepa::ParseDevice(options_.device);
    if (!d.ok() || d->is_cpu()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the job's resources.device is cuda; this trainer's device is ", options_.device,
          d.ok() ? " (start it with --device cuda)" : absl::StrCat(": ", d.status().message())));
    }
    device = *d;
  } else if (options_.device != "cpu") {
    LOG(WARNING) << "the job's resources.device is cpu: training on the CPU, not "
                 << options_.device;
  }
  LOG(INFO) << "training on " << device << " in " << jepa::PrecisionName(config->precision);

  torch::manual_seed(static_cast<uint64_t>(spec.seed));
  core::StatusOr<std::unique_ptr<jepa::Trainer>> created = jepa::Trainer::Create(*config, device);
  if (!created.ok()) return Annotate(ToAbsl(created.status()), "model");
  std::unique_ptr<jepa::Trainer> trainer = std::move(created).value();

  TrainingResult result;
  if (!options_.resume_checkpoint.empty()) {
    const std::string& path = options_.resume_checkpoint;
    core::StatusOr<checkpoint::TrainingCheckpoint> ckpt = checkpoint::LoadCheckpoint(path);
    if (!ckpt.ok()) return Annotate(ToAbsl(ckpt.status()), absl::StrCat("checkpoint ", path));
    core::Status restored = jepa::RestoreCheckpoint(*ckpt, trainer.get());
    if (!restored.ok()) {
      return Annotate(ToAbsl(restored), absl::StrCat("restoring checkpoint ", path));
    }
    if (trainer->updates() != options_.resume_step) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint ", path, " is at step ",
                                                        trainer->updates(), ", the resume step is ",
                                                        options_.resume_step));
    }
    LOG(INFO) << "resumed from " << path << " at step " << trainer->updates();
    result.last_checkpoint = path;
  } else if (options_.resume) {
    if (options_.checkpoint_dir.empty()) {
      return absl::InvalidArgumentError("--resume needs --checkpoint_dir");
    }
    absl::StatusOr<std::string> path = NewestCheckpoint(options_.checkpoint_dir);
    if (path.ok()) {
      core::StatusOr<checkpoint::TrainingCheckpoint> ckpt = checkpoint::LoadCheckpoint(*path);
      if (!ckpt.ok()) return Annotate(ToAbsl(ckpt.status()), absl::StrCat("checkpoint ", *path));
      core::Status restored = jepa::RestoreCheckpoint(*ckpt, trainer.get());
      if (!restored.ok()) {
        return Annotate(ToAbsl(restored), absl::StrCat("restoring checkpoint ", *path));
      }
      LOG(INFO) << "resumed from " << *path << " at step " << trainer->updates();
      result.last_checkpoint = *path;
    } else if (absl::IsNotFound(path.status())) {
      LOG(INFO) << "--resume: " << path.status().message() << "; starting at step 0";
    } else {
      return path.status();
    }
  }
  result.start_step = trainer->updates();
  result.end_step = trainer->updates();
  if (trainer->updates() >= steps) {
    LOG(INFO) << "nothing to do: step " << trainer->updates() << " of " << steps;
    return result;
  }

  std::ofstream batch_log;
  if (!options_.batch_log.empty()) {
    batch_log.open(options_.batch_log, std::ios::app);
    if (!batch_log) {
      return absl::FailedPreconditionError(
          absl::StrCat("--batch_log ", options_.batch_log, ": cannot open for appending"));
    }
  }

  std::unique_ptr<ProcessGroup> group;
  if (options_.world_size > 1) {
    DistributedOptions d;
    d.job_id = options_.job_id;
    d.generation = options_.generation;
    d.rank = options_.rank;
    d.world_size = options_.world_size;
    d.store_address = options_.c10d_store;
    d.timeout = options_.c10d_timeout;
    d.bind_host = options_.c10d_bind_host;
    d.backend = device.is_cuda() && NcclAvailable() ? Backend::kNccl : Backend::kGloo;
    absl::StatusOr<std::unique_ptr<ProcessGroup>> joined = ProcessGroup::Join(d);
    if (!joined.ok()) return Annotate(joined.status(), "c10d group");
    group = std::move(joined).value();
    // Every rank starts from rank 0's parameters.
    std::vector<torch::Tensor> params;
    for (auto* module : std::initializer_list<torch::nn::Module*>{
             trainer->encoder().get(), trainer->predictor().get(),
             trainer->target_encoder().get()}) {
      for (const torch::Tensor& p : module->parameters()) params.push_back(p.detach());
    }
    if (absl::Status s = group->Broadcast(params, 0); !s.ok()) {
      return Annotate(s, "c10d broadcast of the initial parameters");
    }
    trainer->SetGradientHook(GradientAllReduceHook(group.get()));
  }

  DataClientOptions d;
  d.job_id = options_.job_id;
  d.generation = options_.generation;
  d.rank = options_.rank;
  d.world_size = options_.world_size;
  d.addresses = options_.dataworkers;
  d.token = options_.token;
  d.tls = options_.data_tls;
  d.start_step = trainer->updates();
  // Standalone (1): every dataworker produces every g of this rank; fail over. Coordinator mode
  // (0): one stream per dataworker, each carrying the g's leased to it.
  d.streams = options_.streams;
  d.batch_size = static_cast<int>(spec.optim.batch_size);
  d.num_tokens = config->vit.num_tokens();
  d.token_bytes = config->vit.token_values();
  d.mask_configs = static_cast<int>(spec.mask.size());
  d.reconnect_deadline = options_.reconnect_deadline;
  absl::StatusOr<std::unique_ptr<DataClient>> client = data_.Open(d);
  if (!client.ok()) return Annotate(client.status(), "data client");
  if (stop_) (*client)->Stop();

  jepa::CheckpointInfo info;
  info.iterations_per_epoch = spec.optim.ipe;
  info.spec = options_.spec_text;
  const bool writes_checkpoints = options_.rank == 0 && !options_.checkpoint_dir.empty();
  if (writes_checkpoints) {
    std::error_code ec;
    std::filesystem::create_directories(options_.checkpoint_dir, ec);
  }
  int64_t saved_step = result.last_checkpoint.empty() ? -1 : trainer->updates();
  auto save = [&]() -> absl::Status {
    const int64_t step = trainer->updates();
    if (!writes_checkpoints || step == saved_step) return absl::OkStatus();
    const std::string path = CheckpointPath(options_.checkpoint_dir, step);
    core::Status s = checkpoint::SaveCheckpoint(path, jepa::MakeCheckpoint(*trainer, info));
    if (!s.ok()) return Annotate(ToAbsl(s), absl::StrCat("checkpoint ", path));
    saved_step = step;
    result.last_checkpoint = path;
    LOG(INFO) << "checkpoint " << path;
    if (options_.on_checkpoint) {
      if (absl::Status u = options_.on_checkpoint(path, step, step == steps); !u.ok()) {
        return Annotate(u, absl::StrCat("checkpoint of step ", step));
      }
    }
    return absl::OkStatus();
  };

  absl::Status failure;
  // The untrained weights of this seed, for a probe of the starting point.
  if (spec.checkpoint.initial && trainer->updates() == 0 && result.last_checkpoint.empty()) {
    if (absl::Status s = save(); !s.ok()) failure = s;
  }
  const int64_t every =
      options_.checkpoint_every >= 0 ? options_.checkpoint_every : spec.checkpoint.every_steps;
  const int log_every = std::max(1, options_.log_every);
  double window_start = NowSeconds();
  double window_wait = 0;
  int64_t window_clips = 0;
  // GPU (or --stage_ahead): batches are fetched and go to the device one step ahead (pinned
  // memory, a copy stream).
  jepa::BatchUploader uploader(device);
  const bool prefetch = !device.is_cpu() || options_.stage_ahead;
  if (prefetch) LOG(INFO) << "batches are fetched and staged one step ahead";
  std::optional<absl::StatusOr<StepBatch>> ahead;
  std::future<jepa::StagedBatch> ahead_staged;
  // Fetches a batch into `ahead` and starts staging it.
  auto fetch = [&] {
    ahead = (*client)->Next();
    if (prefetch && ahead->ok()) ahead_staged = uploader.StageAsync((*ahead)->batch);
  };
  while (failure.ok() && trainer->updates() < steps) {
    if (stop_) {
      result.stopped = true;
      break;
    }
    const double t0 = NowSeconds();
    const double wait0 = (*client)->data_wait_seconds();
    if (!ahead.has_value()) fetch();
    absl::StatusOr<StepBatch> batch = *std::move(ahead);
    std::future<jepa::StagedBatch> staged = std::move(ahead_staged);
    ahead.reset();
    jepa::Batch step_batch;
    if (batch.ok()) {
      step_batch = staged.valid() ? uploader.Ready(staged.get()) : batch->batch;
      // On a GPU the next batch is fetched now and staged (pinned copy, then the copy to the
      // device) on another thread while this step computes; an error in fetching it is the
      // next step's.
      if (prefetch && trainer->updates() + 1 < steps && !stop_) fetch();
    }
    const double waited = (*client)->data_wait_seconds() - wait0;
    metrics_.data_wait_seconds.Increment(waited);
    if (!batch.ok()) {
      if (stop_) {
        result.stopped = true;
        break;
      }
      failure = Annotate(batch.status(), absl::StrCat("data for step ", trainer->updates() + 1));
      break;
    }
    core::StatusOr<jepa::StepStats> stats = trainer->Step(step_batch);
    if (!stats.ok()) {
      failure = Annotate(ToAbsl(stats.status()), absl::StrCat("step ", trainer->updates() + 1));
      break;
    }
    if (!std::isfinite(stats->loss)) {
      failure = absl::InternalError(
          absl::StrCat("step ", stats->update, ": the loss is not finite (", stats->loss, ")"));
      break;
    }
    const double t1 = NowSeconds();
    if (batch_log.is_open()) {
      // One write per line (the file is opened for appending): processes may share it.
      const std::string line = absl::StrCat(
          "{\"job_id\":", JsonString(options_.job_id), ",\"generation\":", options_.generation,
          ",\"rank\":", options_.rank, ",\"step\":", batch->step, ",\"g\":", batch->global_index,
          ",\"epoch\":", batch->header.epoch(), ",\"batch_index\":", batch->header.batch_index(),
          ",\"source\":", JsonString(batch->source), "}\n");
      batch_log.write(line.data(), static_cast<std::streamsize>(line.size()));
      batch_log.flush();
    }
    if (options_.on_step) {
      StepReport report;
      report.step = trainer->updates();
      report.global_index = batch->global_index;
      report.loss = stats->loss;
      report.lr = stats->lr;
      report.step_seconds = t1 - t0;
      report.target_feature_std = stats->target_feature_std;
      report.data_wait_seconds = waited;
      report.clips_per_second =
          static_cast<double>(batch->batch.tokens.size(0)) / std::max(t1 - t0, 1e-9);
      options_.on_step(report);
    }
    metrics_.step_seconds.Observe(t1 - t0);
    metrics_.loss.Set(stats->loss);
    metrics_.lr.Set(stats->lr);
    metrics_.weight_decay.Set(stats->wd);
    metrics_.ema_momentum.Set(stats->momentum);
    metrics_.encoder_grad_norm.Set(stats->encoder_grad_norm);
    metrics_.predictor_grad_norm.Set(stats->predictor_grad_norm);
    metrics_.target_feature_std.Set(stats->target_feature_std);
    metrics_.steps.Increment();
    metrics_.step.Set(static_cast<double>(stats->update));
    window_wait += waited;
    window_clips += batch->batch.tokens.size(0);
    const int64_t step = trainer->updates();
    if (step % log_every == 0 || step == steps) {
      const double span = std::max(t1 - window_start, 1e-9);
      const double clips_per_s = static_cast<double>(window_clips) / span;
      metrics_.clips_per_second.Set(clips_per_s);
      // New fields go at the end: the start of the line is read by scripts and tests.
      LOG(INFO) << "step " << step << "/" << steps << " loss " << Num(stats->loss) << " lr "
                << Num(stats->lr) << " clips/s " << Num(clips_per_s) << " data_wait "
                << Num(window_wait / span) << " target_std " << Num(stats->target_feature_std);
      window_start = t1;
      window_wait = 0;
      window_clips = 0;
    }
    if (every > 0 && step % every == 0) {
      if (absl::Status s = save(); !s.ok()) {
        failure = s;
        break;
      }
    }
  }
  data_.Set(nullptr);
  (*client)->Stop();
  result.end_step = trainer->updates();
  result.aborted = abort_;
  if (abort_) {
    result.stopped = true;
    return result;
  }
  if (!failure.ok()) return failure;
  // The end of the run, or a stop: the last step's checkpoint.
  if (absl::Status s = save(); !s.ok()) return s;
  return result;
}

}  // namespace vjepa::trainer
