// Compile-time LibTorch version checks, for the places where the API differs between Debian's
// LibTorch 1.13 and upstream 2.x (docs/gpu.md lists them).
#ifndef VJEPA_COMMON_CORE_TORCH_VERSION_H_
#define VJEPA_COMMON_CORE_TORCH_VERSION_H_

#include <torch/version.h>

// True when the LibTorch compiled against is at least MAJOR.MINOR.
#define VJEPA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||        \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#endif  // VJEPA_COMMON_CORE_TORCH_VERSION_H_
