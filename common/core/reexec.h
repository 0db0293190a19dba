// libgomp reads OMP_WAIT_POLICY once, when it is loaded; its default spin-waiting makes LibTorch
// ops up to ~100x slower on a shared 2-core machine. Binaries that link LibTorch call this first
// thing in main(): when the variable is unset it sets PASSIVE and re-executes the binary.
#ifndef VJEPA_COMMON_CORE_REEXEC_H_
#define VJEPA_COMMON_CORE_REEXEC_H_

#include <unistd.h>

#include <cstdlib>

namespace vjepa::core {

inline void ReexecWithPassiveOmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
  // execv failed: carry on with the environment as it is.
}

}  // namespace vjepa::core

#endif  // VJEPA_COMMON_CORE_REEXEC_H_
