// The YAML spelling of every enum of the job spec, in one table per enum.
#ifndef VJEPA_COMMON_SPEC_ENUM_NAMES_H_
#define VJEPA_COMMON_SPEC_ENUM_NAMES_H_

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/spec/job_spec.h"

namespace vjepa::spec::internal {

template <typename E>
struct EnumNames;

template <>
struct EnumNames<JobKind> {
  static constexpr std::pair<JobKind, absl::string_view> kEntries[] = {
      {JobKind::kPretrain, "pretrain"}, {JobKind::kProbe, "probe"}};
};

template <>
struct EnumNames<ModelPreset> {
  static constexpr std::pair<ModelPreset, absl::string_view> kEntries[] = {
      {ModelPreset::kNano, "nano"},          {ModelPreset::kVitTiny, "vit_tiny"},
      {ModelPreset::kVitSmall, "vit_small"}, {ModelPreset::kVitBase, "vit_base"},
      {ModelPreset::kVitLarge, "vit_large"}, {ModelPreset::kVitHuge, "vit_huge"},
      {ModelPreset::kVitGiant, "vit_giant"}};
};

template <>
struct EnumNames<MaskType> {
  static constexpr std::pair<MaskType, absl::string_view> kEntries[] = {
      {MaskType::kMultiblock3d, "multiblock3d"},
      {MaskType::kRandomTube, "random_tube"},
      {MaskType::kCausalMultiblock, "causal_multiblock"}};
};

template <>
struct EnumNames<LossTarget> {
  static constexpr std::pair<LossTarget, absl::string_view> kEntries[] = {
      {LossTarget::kFeatures, "features"}, {LossTarget::kPixels, "pixels"}};
};

template <>
struct EnumNames<Pooling> {
  static constexpr std::pair<Pooling, absl::string_view> kEntries[] = {
      {Pooling::kAttentive, "attentive"}, {Pooling::kAverage, "average"}, {Pooling::kBoth, "both"}};
};

template <>
struct EnumNames<Device> {
  static constexpr std::pair<Device, absl::string_view> kEntries[] = {{Device::kCpu, "cpu"},
                                                                      {Device::kCuda, "cuda"}};
};

template <>
struct EnumNames<Precision> {
  static constexpr std::pair<Precision, absl::string_view> kEntries[] = {
      {Precision::kFloat32, "float32"}, {Precision::kBfloat16, "bfloat16"}};
};

// "" for a value outside the table.
template <typename E>
absl::string_view EnumName(E value) {
  for (const auto& [v, name] : EnumNames<E>::kEntries) {
    if (v == value) return name;
  }
  return "";
}

template <typename E>
bool ParseEnum(absl::string_view name, E* out) {
  for (const auto& [v, n] : EnumNames<E>::kEntries) {
    if (n == name) {
      *out = v;
      return true;
    }
  }
  return false;
}

// "a, b or c", for messages.
template <typename E>
std::string EnumChoices() {
  std::string out;
  constexpr size_t n = std::size(EnumNames<E>::kEntries);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += i + 1 == n ? " or " : ", ";
    absl::StrAppend(&out, EnumNames<E>::kEntries[i].second);
  }
  return out;
}

}  // namespace vjepa::spec::internal

#endif  // VJEPA_COMMON_SPEC_ENUM_NAMES_H_
