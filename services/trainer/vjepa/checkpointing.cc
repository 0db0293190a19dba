#include "services/trainer/vjepa/checkpointing.h"

namespace vjepa::jepa {

using checkpoint::NamedTensor;

checkpoint::TrainingCheckpoint MakeCheckpoint(const Trainer& trainer, const CheckpointInfo& info) {
  checkpoint::TrainingCheckpoint c;
  std::vector<NamedTensor> all;
  // Files hold host tensors, whatever device the trainer runs on.
  for (const auto& [name, tensor] : trainer.State()) all.push_back({name, tensor.to(torch::kCPU)});
  c.encoder = checkpoint::SelectByPrefix(all, "encoder.");
  c.predictor = checkpoint::SelectByPrefix(all, "predictor.");
  c.target_encoder = checkpoint::SelectByPrefix(all, "target_encoder.");
  c.optimizer.state = checkpoint::SelectByPrefix(all, "optim.");
  const TrainerConfig& tc = trainer.config();
  for (const auto& group : trainer.ParamGroups()) {
    checkpoint::OptimizerParamGroup g;
    g.params = group.names;
    g.options = {{"beta1", tc.beta1},
                 {"beta2", tc.beta2},
                 {"eps", tc.eps},
                 {"WD_exclude", group.decay ? 0.0 : 1.0}};
    c.optimizer.param_groups.push_back(std::move(g));
  }
  c.step = trainer.updates();
  c.generation = info.generation;
  c.iterations_per_epoch = info.iterations_per_epoch;
  c.spec = info.spec;
  c.dataset = info.dataset;
  for (const auto& [k, v] : model::ToMetadata(tc.vit, trainer.predictor_config())) c.extra[k] = v;
  c.extra["target"] = tc.target == Target::kPixels ? "pixels" : "features";
  return c;
}

core::Status RestoreCheckpoint(const checkpoint::TrainingCheckpoint& c, Trainer* trainer) {
  NamedTensors state;
  for (const auto& t : checkpoint::AddPrefix(c.encoder, "encoder."))
    state.emplace_back(t.name, t.tensor);
  for (const auto& t : checkpoint::AddPrefix(c.predictor, "predictor.")) {
    state.emplace_back(t.name, t.tensor);
  }
  for (const auto& t : checkpoint::AddPrefix(c.target_encoder, "target_encoder.")) {
    state.emplace_back(t.name, t.tensor);
  }
  for (const auto& t : checkpoint::AddPrefix(c.optimizer.state, "optim.")) {
    state.emplace_back(t.name, t.tensor);
  }
  // Strict: the file holds exactly the trainer's tensors.
  std::vector<NamedTensor> mine;
  for (const auto& [n, t] : trainer->State()) mine.push_back({n, t});
  const std::pair<const char*, const std::vector<NamedTensor>*> parts[] = {
      {"encoder", &c.encoder}, {"predictor", &c.predictor}, {"target_encoder", &c.target_encoder}};
  for (const auto& [what, saved] : parts) {
    CORE_RETURN_IF_ERROR(checkpoint::CopyStateInto(
        *saved, checkpoint::SelectByPrefix(mine, std::string(what) + "."), what));
  }
  return trainer->LoadState(state, c.step);
}

core::Status ModelConfigOf(const checkpoint::TrainingCheckpoint& c, model::VitConfig* vit,
                           model::PredictorConfig* predictor) {
  return model::FromMetadata(c.extra, vit, predictor);
}

core::StatusOr<FrozenEncoder> LoadFrozenEncoder(const std::string& path, const std::string& part) {
  if (part != "target_encoder" && part != "encoder") {
    return core::InvalidArgumentError("the encoder part must be target_encoder or encoder, got '" +
                                      part + "'");
  }
  auto in_file = [&](const core::Status& s) {
    return core::Status(s.code(), "checkpoint " + path + ": " + s.message());
  };
  checkpoint::LoadOptions load;
  load.optimizer_state = false;
  core::StatusOr<checkpoint::TrainingCheckpoint> ckpt = checkpoint::LoadCheckpoint(path, load);
  if (!ckpt.ok()) return in_file(ckpt.status());
  FrozenEncoder frozen;
  model::PredictorConfig predictor;
  if (core::Status s = ModelConfigOf(*ckpt, &frozen.vit, &predictor); !s.ok()) return in_file(s);
  frozen.encoder = model::VisionTransformer(frozen.vit);
  if (core::Status s = checkpoint::CopyStateInto(
          part == "encoder" ? ckpt->encoder : ckpt->target_encoder,
          checkpoint::ToNamedTensors(frozen.encoder->named_parameters()), part);
      !s.ok()) {
    return in_file(s);
  }
  frozen.encoder->eval();
  frozen.step = ckpt->step;
  return frozen;
}

}  // namespace vjepa::jepa
