#include "services/trainer/service/probe_run.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/model/vit.h"
#include "services/trainer/probe/probe_classifier.h"
#include "services/trainer/probe/probe_trainer.h"
#include "services/trainer/service/run_util.h"
#include "services/trainer/vjepa/checkpointing.h"

namespace vjepa::trainer {
namespace {

// The cached features of one split: per view, one [B, segments·N, D] chunk per batch.
struct SplitFeatures {
  std::vector<std::vector<torch::Tensor>> views;
  std::vector<torch::Tensor> labels;
  int64_t samples = 0;

  std::vector<torch::Tensor> AllViews() const {
    std::vector<torch::Tensor> out;
    for (const std::vector<torch::Tensor>& chunks : views) out.push_back(torch::cat(chunks, 0));
    return out;
  }
  torch::Tensor AllLabels() const { return torch::cat(labels, 0); }
};

struct Evaluation {
  int64_t samples = 0;
  int64_t correct = 0;
  std::vector<int64_t> class_correct, class_samples;
  double top1() const {
    return samples > 0 ? static_cast<double>(correct) / static_cast<double>(samples) : 0.0;
  }
};

// Top-1 of the view-averaged softmax, in all and per class.
absl::StatusOr<Evaluation> Evaluate(probe::ProbeTrainer& trainer,
                                    const std::vector<torch::Tensor>& views,
                                    const torch::Tensor& labels, int64_t batch_size,
                                    int64_t classes) {
  Evaluation e;
  e.class_correct.assign(static_cast<size_t>(classes), 0);
  e.class_samples.assign(static_cast<size_t>(classes), 0);
  const int64_t n = labels.size(0);
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(start + batch_size, n);
    std::vector<torch::Tensor> chunk;
    for (const torch::Tensor& v : views) chunk.push_back(v.slice(0, start, end));
    core::StatusOr<torch::Tensor> probs = trainer.Predict(chunk);
    if (!probs.ok()) return ToAbsl(probs.status());
    const torch::Tensor predicted = probs->argmax(1).to(torch::kCPU);
    const torch::Tensor truth = labels.slice(0, start, end);
    for (int64_t i = 0; i < end - start; ++i) {
      const int64_t label = truth[i].item<int64_t>();
      const bool hit = predicted[i].item<int64_t>() == label;
      ++e.samples;
      ++e.class_samples[static_cast<size_t>(label)];
      if (hit) {
        ++e.correct;
        ++e.class_correct[static_cast<size_t>(label)];
      }
    }
  }
  return e;
}

// The poolings a spec trains, attentive first.
std::vector<probe::ProbePooling> PoolingsOf(spec::Pooling pooling) {
  switch (pooling) {
    case spec::Pooling::kAttentive:
      return {probe::ProbePooling::kAttentive};
    case spec::Pooling::kAverage:
      return {probe::ProbePooling::kAverage};
    case spec::Pooling::kBoth:
      break;
  }
  return {probe::ProbePooling::kAttentive, probe::ProbePooling::kAverage};
}

}  // namespace

ProbeRun::ProbeRun(ProbeRunOptions options, TrainerMetrics* metrics)
    : options_(std::move(options)), metrics_(*metrics) {}

ProbeRun::~ProbeRun() = default;

void ProbeRun::Abort() {
  abort_ = true;
  data_.Stop();
}

void ProbeRun::AddDataworker(const std::string& address) { data_.AddAddress(address); }

absl::StatusOr<ProbeRunResult> ProbeRun::Run() {
  const spec::JobSpec& spec = options_.spec;
  const spec::ProbeSpec& ps = spec.probe;
  if (spec.kind != spec::JobKind::kProbe) {
    return absl::InvalidArgumentError("job spec: kind is not probe");
  }
  if (!ps.num_classes.has_value() || *ps.num_classes < 1) {
    return absl::InvalidArgumentError("job spec: probe.num_classes must be >= 1");
  }
  const int64_t classes = *ps.num_classes;

  // The frozen encoder.
  const std::string& path = options_.checkpoint;
  core::StatusOr<jepa::FrozenEncoder> frozen = jepa::LoadFrozenEncoder(path, ps.checkpoint_key);
  if (!frozen.ok()) return ToAbsl(frozen.status());
  const model::VitConfig& vit = frozen->vit;
  model::VisionTransformer& encoder = frozen->encoder;
  std::vector<std::string> mismatches;
  auto compare = [&](const char* field, int64_t got, int64_t want) {
    if (got != want) {
      mismatches.push_back(
          absl::StrCat(field, " ", got, " (the spec's model.", field, ": ", want, ")"));
    }
  };
  compare("frames", vit.frames, spec.model.frames);
  compare("crop", vit.crop, spec.model.crop);
  compare("patch", vit.patch, spec.model.patch);
  compare("tubelet", vit.tubelet, spec.model.tubelet);
  if (!mismatches.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint ", path,
        " was trained on other clips than the probe's: ", absl::StrJoin(mismatches, ", ")));
  }
  LOG(INFO) << "probe of job " << options_.job_id << ": the " << ps.checkpoint_key << " of " << path
            << " (step " << frozen->step << ", D " << vit.embed_dim << ", depth " << vit.depth
            << ")";

  // The features of every batch.
  DataClientOptions d;
  d.job_id = options_.job_id;
  d.generation = options_.generation;
  d.addresses = options_.dataworkers;
  d.token = options_.token;
  d.tls = options_.data_tls;
  d.streams = 0;
  d.batch_size = static_cast<int>(ps.batch_size);
  d.num_tokens = vit.num_tokens();
  d.token_bytes = vit.token_values();
  d.mask_configs = 0;
  d.probe = true;
  d.segments = static_cast<int>(ps.segments);
  d.views = static_cast<int>(ps.views);
  d.reconnect_deadline = options_.reconnect_deadline;
  absl::StatusOr<std::unique_ptr<DataClient>> client = data_.Open(d);
  if (!client.ok()) return Annotate(client.status(), "data client");
  if (abort_) (*client)->Stop();

  ProbeRunResult result;
  std::map<std::string, SplitFeatures> splits;
  int64_t total = -1;
  absl::Status failure;
  const int64_t segments = ps.segments, views = ps.views;
  const int log_every = std::max(1, options_.log_every);
  {
    torch::NoGradGuard no_grad;
    while (!abort_ && (total < 0 || result.batches < total)) {
      const double t0 = NowSeconds();
      const double wait0 = (*client)->data_wait_seconds();
      absl::StatusOr<StepBatch> batch = (*client)->Next();
      const double waited = (*client)->data_wait_seconds() - wait0;
      metrics_.data_wait_seconds.Increment(waited);
      if (!batch.ok()) {
        if (!abort_) {
          failure = Annotate(batch.status(),
                             absl::StrCat("data for batch ", result.batches + 1, " of ", total));
        }
        break;
      }
      const v1::BatchHeader& h = batch->header;
      const std::string where = absl::StrCat("batch g ", batch->global_index);
      if (total < 0) {
        total = h.total_batches();
      } else if (h.total_batches() != total) {
        failure = absl::InvalidArgumentError(absl::StrCat(
            where, ": total_batches ", h.total_batches(), ", the job's first batch said ", total));
        break;
      }
      const int64_t b = h.batch_size();
      torch::Tensor labels = torch::empty({b}, torch::kInt64);
      for (int64_t i = 0; i < b; ++i) {
        const int64_t label = h.labels(static_cast<int>(i));
        if (label < 0 || label >= classes) {
          failure = absl::InvalidArgumentError(absl::StrCat(where, ": label ", label, " of sample ",
                                                            i, " outside [0, ", classes, ")"));
          break;
        }
        labels[i] = label;
      }
      if (!failure.ok()) break;
      // [B·S·V, N, D] in (sample, segment, view) order → per view [B, S·N, D].
      const torch::Tensor tokens = encoder->forward(batch->batch.tokens);
      const int64_t n = tokens.size(1), dim = tokens.size(2);
      const torch::Tensor per_view = tokens.view({b, segments, views, n, dim})
                                         .permute({2, 0, 1, 3, 4})
                                         .reshape({views, b, segments * n, dim});
      SplitFeatures& split = splits[h.split()];
      split.views.resize(static_cast<size_t>(views));
      for (int64_t v = 0; v < views; ++v) {
        split.views[static_cast<size_t>(v)].push_back(per_view[v].clone());
      }
      split.labels.push_back(labels);
      split.samples += b;
      ++result.batches;
      metrics_.probe_batches.Increment();
      const double t1 = NowSeconds();
      if (options_.on_progress) {
        StepReport report;
        report.step = result.batches;
        report.global_index = batch->global_index;
        report.phase = "features";
        report.step_seconds = t1 - t0;
        report.data_wait_seconds = waited;
        report.clips_per_second =
            static_cast<double>(batch->batch.tokens.size(0)) / std::max(t1 - t0, 1e-9);
        options_.on_progress(report);
      }
      if (result.batches % log_every == 0 || result.batches == total) {
        LOG(INFO) << "features " << result.batches << "/" << total << " (" << h.split() << ", "
                  << split.samples << " samples)";
      }
    }
  }
  data_.Set(nullptr);
  (*client)->Stop();
  if (abort_) {
    result.aborted = true;
    return result;
  }
  if (!failure.ok()) return failure;

  auto train_it = splits.find("train");
  if (train_it == splits.end() || train_it->second.samples == 0) {
    return absl::FailedPreconditionError("probe: the job has no probe-train samples");
  }
  const std::vector<torch::Tensor> train_views = train_it->second.AllViews();
  const torch::Tensor train_labels = train_it->second.AllLabels();
  auto val_it = splits.find("val");
  const bool has_val = val_it != splits.end() && val_it->second.samples > 0;
  const std::vector<torch::Tensor> eval_views = has_val ? val_it->second.AllViews() : train_views;
  const torch::Tensor eval_labels = has_val ? val_it->second.AllLabels() : train_labels;
  const std::string evaluated_on = has_val ? "val" : "train";
  const int64_t samples = train_labels.size(0);
  const int64_t batch_size = std::max<int64_t>(1, ps.batch_size);
  const int64_t epochs = std::max<int64_t>(0, ps.epochs);
  const int64_t per_epoch = probe::ProbeStepsPerEpoch(samples, batch_size);

  for (const probe::ProbePooling pooling : PoolingsOf(ps.pooling)) {
    const std::string name = probe::ProbePoolingName(pooling);
    probe::ProbeOptions po;
    po.pooling = pooling;
    po.embed_dim = vit.embed_dim;
    po.num_heads = vit.heads;
    po.num_classes = classes;
    po.seed = static_cast<uint64_t>(spec.seed);
    core::StatusOr<probe::ProbeClassifier> classifier = probe::MakeProbeClassifier(po);
    if (!classifier.ok())
      return Annotate(ToAbsl(classifier.status()), absl::StrCat(name, " probe"));
    probe::ProbeTrainConfig tc;
    tc.total_steps = std::max<int64_t>(1, epochs * per_epoch);
    tc.warmup_steps = 0;
    tc.start_lr = ps.lr;
    tc.lr = ps.lr;
    tc.final_lr = 0.0;
    tc.weight_decay = ps.wd.start;
    tc.final_weight_decay = ps.wd.final;
    tc.grad_clip = ps.clip;
    tc.seed = static_cast<uint64_t>(spec.seed);
    core::StatusOr<std::unique_ptr<probe::ProbeTrainer>> created =
        probe::ProbeTrainer::Create(*classifier, tc);
    if (!created.ok()) return Annotate(ToAbsl(created.status()), absl::StrCat(name, " probe"));
    probe::ProbeTrainer& trainer = **created;
    at::Generator order_generator =
        at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(spec.seed));
    double last_loss = 0;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      const torch::Tensor order = torch::randperm(samples, order_generator, torch::kLong);
      double loss_sum = 0;
      int64_t correct = 0;
      for (int64_t start = 0; start < samples; start += batch_size) {
        if (abort_) {
          result.aborted = true;
          return result;
        }
        const torch::Tensor idx = order.slice(0, start, std::min(start + batch_size, samples));
        std::vector<torch::Tensor> chunk;
        for (const torch::Tensor& v : train_views) chunk.push_back(v.index_select(0, idx));
        core::StatusOr<probe::ProbeStepStats> stats =
            trainer.TrainStep(chunk, train_labels.index_select(0, idx));
        if (!stats.ok()) {
          return Annotate(
              ToAbsl(stats.status()),
              absl::StrCat(name, " probe, epoch ", epoch, ", update ", trainer.steps_done() + 1));
        }
        loss_sum += stats->loss;
        correct += stats->correct;
        metrics_.probe_steps.Increment();
      }
      last_loss = loss_sum / static_cast<double>(per_epoch);
      LOG(INFO) << "probe " << name << " epoch " << epoch << "/" << epochs << " loss "
                << Num(last_loss) << " train_top1 "
                << Num(static_cast<double>(correct) / static_cast<double>(samples));
      if (options_.on_progress) {
        StepReport report;
        report.step = result.batches;
        report.global_index = -1;
        report.phase = "probe";
        report.loss = last_loss;
        report.lr = probe::ProbeLrAt(tc, trainer.steps_done());
        options_.on_progress(report);
      }
    }
    absl::StatusOr<Evaluation> on_train =
        Evaluate(trainer, train_views, train_labels, batch_size, classes);
    if (!on_train.ok()) return Annotate(on_train.status(), absl::StrCat(name, " probe on train"));
    absl::StatusOr<Evaluation> on_eval =
        Evaluate(trainer, eval_views, eval_labels, batch_size, classes);
    if (!on_eval.ok()) {
      return Annotate(on_eval.status(), absl::StrCat(name, " probe on ", evaluated_on));
    }
    v1::ProbeResult r;
    r.set_pooling(name);
    r.set_top1(on_eval->top1());
    r.set_evaluated_on(evaluated_on);
    r.set_samples(on_eval->samples);
    for (int64_t c = 0; c < classes; ++c) {
      const int64_t n = on_eval->class_samples[static_cast<size_t>(c)];
      r.add_per_class_top1(
          n > 0 ? static_cast<double>(on_eval->class_correct[static_cast<size_t>(c)]) /
                      static_cast<double>(n)
                : 0.0);
      r.add_per_class_samples(n);
    }
    r.set_train_top1(on_train->top1());
    r.set_final_loss(last_loss);
    r.set_steps(trainer.steps_done());
    metrics_.probe_top1.Add({{"pooling", name}}).Set(r.top1());
    LOG(INFO) << "probe " << name << ": top1 " << Num(r.top1()) << " on " << evaluated_on << " ("
              << r.samples() << " samples), train_top1 " << Num(r.train_top1()) << ", loss "
              << Num(last_loss) << ", " << r.steps() << " updates";
    result.results.push_back(std::move(r));
  }
  return result;
}

}  // namespace vjepa::trainer
