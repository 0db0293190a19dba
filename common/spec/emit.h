// JobSpec → YAML tree, the inverse of the decoder.
#ifndef VJEPA_COMMON_SPEC_EMIT_H_
#define VJEPA_COMMON_SPEC_EMIT_H_

#include "common/spec/job_spec.h"
#include "common/spec/yaml_tree.h"

namespace vjepa::spec::internal {

// Every field, in the order of docs/job-spec.md.
Node SpecToNode(const JobSpec& spec);
Node MaskToNode(const MaskSpec& mask);

}  // namespace vjepa::spec::internal

#endif  // VJEPA_COMMON_SPEC_EMIT_H_
