# Finds LibTorch and says what it can do. Debian's LibTorch 1.13 (CPU) is the default; with
# -DVJEPA_TORCH_UPSTREAM=ON the build takes an upstream LibTorch 2.x from CMAKE_PREFIX_PATH (an
# unpacked libtorch folder, or a Python torch's share/cmake: python3 -c 'import torch;
# print(torch.utils.cmake_prefix_path)'). Sets:
#   VJEPA_TORCH_VERSION   MAJOR.MINOR.PATCH
#   VJEPA_TORCH_CUDA      ON when this LibTorch was built with CUDA
#   VJEPA_TORCH_NCCL      ON when c10d's NCCL backend can be compiled (CUDA and nccl.h found)
#   VJEPA_TORCH_GLOO      ON when c10d's Gloo backend can be compiled
# and raises the C++ standard to 20 for LibTorch 2.13 and later, whose headers need it.
#
# -DVJEPA_TORCH_ROOT=DIR skips LibTorch's CMake config: DIR holds include/ and lib/ (a libtorch
# folder, or a Python torch package folder), the libraries are linked directly, and CUDA is on
# when lib/ has libtorch_cuda. A fallback for machines where the config's own CUDA toolkit
# discovery fails; VJEPA_TORCH_CXX11_ABI (default 1) must match the build of that LibTorch.
set(VJEPA_TORCH_ROOT "" CACHE PATH "A LibTorch folder (include/, lib/) used without its CMake config")
set(VJEPA_TORCH_CXX11_ABI 1 CACHE STRING "_GLIBCXX_USE_CXX11_ABI of the LibTorch in VJEPA_TORCH_ROOT")

function(_vjepa_torch_from_root root)
  foreach(lib torch torch_cpu c10)
    find_library(_vjepa_lib_${lib} NAMES ${lib} PATHS "${root}/lib" NO_DEFAULT_PATH)
    if(NOT _vjepa_lib_${lib})
      message(FATAL_ERROR "VJEPA_TORCH_ROOT=${root}: no lib${lib}.so in ${root}/lib")
    endif()
  endforeach()
  if(NOT EXISTS "${root}/include/torch/csrc/api/include/torch/torch.h")
    message(FATAL_ERROR "VJEPA_TORCH_ROOT=${root}: no include/torch/csrc/api/include/torch/torch.h")
  endif()
  find_library(_vjepa_lib_torch_cuda NAMES torch_cuda PATHS "${root}/lib" NO_DEFAULT_PATH)
  find_library(_vjepa_lib_c10_cuda NAMES c10_cuda PATHS "${root}/lib" NO_DEFAULT_PATH)
  find_package(Threads REQUIRED)
  # The libraries find their own dependencies (CUDA's, from a wheel's nvidia/ folders) through
  # their RUNPATH when loaded; the linker need not resolve them.
  set(libs ${_vjepa_lib_torch} ${_vjepa_lib_torch_cpu} ${_vjepa_lib_c10} Threads::Threads
           "-Wl,-rpath,${root}/lib" "-Wl,--allow-shlib-undefined")
  set(cuda_libs "")
  if(_vjepa_lib_torch_cuda)
    # Linked even though no symbol of ours needs it: loading it registers the CUDA kernels.
    set(cuda_libs "-Wl,--no-as-needed" ${_vjepa_lib_torch_cuda} ${_vjepa_lib_c10_cuda}
                  "-Wl,--as-needed")
  endif()
  set(TORCH_LIBRARIES ${cuda_libs} ${libs} PARENT_SCOPE)
  set(TORCH_CUDA_LIBRARIES ${cuda_libs} PARENT_SCOPE)
  set(TORCH_INCLUDE_DIRS "${root}/include" "${root}/include/torch/csrc/api/include" PARENT_SCOPE)
  set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=${VJEPA_TORCH_CXX11_ABI}" PARENT_SCOPE)
  set(Torch_DIR "${root}" PARENT_SCOPE)
  set(Torch_FOUND TRUE PARENT_SCOPE)
  set(Torch_VERSION "" PARENT_SCOPE)
endfunction()
if(VJEPA_TORCH_UPSTREAM AND NOT CMAKE_PREFIX_PATH AND NOT DEFINED ENV{CMAKE_PREFIX_PATH}
   AND NOT Torch_DIR AND NOT VJEPA_TORCH_ROOT)
  message(FATAL_ERROR
    "VJEPA_TORCH_UPSTREAM: set CMAKE_PREFIX_PATH to an upstream libtorch folder or to a Python "
    "torch's share/cmake (python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')")
endif()
if(VJEPA_TORCH_ROOT)
  _vjepa_torch_from_root("${VJEPA_TORCH_ROOT}")
else()
  find_package(Torch REQUIRED)
endif()

set(VJEPA_TORCH_VERSION "${Torch_VERSION}")
if(NOT VJEPA_TORCH_VERSION)
  # Some packagings set no version: read it from the headers.
  find_file(_vjepa_torch_version_h torch/version.h PATHS ${TORCH_INCLUDE_DIRS}
            NO_DEFAULT_PATH)
  if(_vjepa_torch_version_h)
    set(_parts "")
    foreach(part MAJOR MINOR PATCH)
      file(STRINGS "${_vjepa_torch_version_h}" _v REGEX "#define TORCH_VERSION_${part} ")
      string(REGEX REPLACE ".* ([0-9]+).*" "\\1" _v "${_v}")
      list(APPEND _parts "${_v}")
    endforeach()
    list(JOIN _parts "." VJEPA_TORCH_VERSION)
  endif()
endif()
if(VJEPA_TORCH_VERSION VERSION_LESS 1.13)
  message(FATAL_ERROR "LibTorch ${VJEPA_TORCH_VERSION} at ${Torch_DIR}: vjepa-train needs 1.13 "
                      "or later")
endif()
if(VJEPA_TORCH_UPSTREAM AND VJEPA_TORCH_VERSION VERSION_LESS 2.0)
  message(FATAL_ERROR
    "VJEPA_TORCH_UPSTREAM: found LibTorch ${VJEPA_TORCH_VERSION} at ${Torch_DIR}, which is not "
    "2.x; put the upstream one first in CMAKE_PREFIX_PATH (or leave the option off for Debian's)")
endif()
if(VJEPA_TORCH_VERSION VERSION_GREATER_EQUAL 2.13 AND CMAKE_CXX_STANDARD LESS 20)
  set(CMAKE_CXX_STANDARD 20)
endif()

set(VJEPA_TORCH_CUDA OFF)
if((TARGET torch_cuda AND NOT VJEPA_TORCH_ROOT) OR TORCH_CUDA_LIBRARIES)
  set(VJEPA_TORCH_CUDA ON)
endif()

# c10d backends: their headers compile only with USE_C10D_<BACKEND> defined, which Debian's
# TORCH_CXX_FLAGS carry and upstream's do not.
set(VJEPA_TORCH_GLOO OFF)
set(VJEPA_TORCH_NCCL OFF)
set(_vjepa_torch_defs "${TORCH_CXX_FLAGS}")
foreach(_t torch torch_cpu)
  if(TARGET ${_t})
    get_target_property(_d ${_t} INTERFACE_COMPILE_DEFINITIONS)
    if(_d)
      string(APPEND _vjepa_torch_defs " ${_d}")
    endif()
  endif()
endforeach()
# Whether LibTorch's own flags define USE_C10D_GLOO already (Debian's do).
set(VJEPA_TORCH_GLOO_DEFINED OFF)
if(_vjepa_torch_defs MATCHES "USE_C10D_GLOO")
  set(VJEPA_TORCH_GLOO ON)
  set(VJEPA_TORCH_GLOO_DEFINED ON)
else()
  find_path(VJEPA_GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS})
  if(VJEPA_GLOO_INCLUDE_DIR)
    set(VJEPA_TORCH_GLOO ON)
  endif()
endif()
if(VJEPA_TORCH_CUDA)
  # nccl.h: the CUDA toolkit's, NCCL_ROOT's, or the nvidia-nccl wheel's beside a Python torch.
  set(_hints ${TORCH_INCLUDE_DIRS} ${CUDAToolkit_INCLUDE_DIRS})
  foreach(dir ${TORCH_INCLUDE_DIRS})
    list(APPEND _hints "${dir}/../../nvidia/nccl/include" "${dir}/../../nvidia/cu13/include"
                       "${dir}/../../nvidia/cu12/include")
  endforeach()
  find_path(VJEPA_NCCL_INCLUDE_DIR nccl.h HINTS ${_hints} ENV NCCL_ROOT PATH_SUFFIXES include)
  if(VJEPA_NCCL_INCLUDE_DIR)
    set(VJEPA_TORCH_NCCL ON)
  endif()
endif()

# Debian's TorchConfig adds its flags to TORCH_CXX_FLAGS; keep them target-scoped.
if(NOT TARGET vjepa_torch)
  add_library(vjepa_torch INTERFACE)
  target_link_libraries(vjepa_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(vjepa_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  separate_arguments(_vjepa_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(vjepa_torch INTERFACE ${_vjepa_torch_flags})
  if(VJEPA_TORCH_CUDA)
    target_compile_definitions(vjepa_torch INTERFACE VJEPA_TORCH_CUDA=1)
  endif()
endif()
message(STATUS "vjepa: LibTorch ${VJEPA_TORCH_VERSION} at ${Torch_DIR} (CUDA ${VJEPA_TORCH_CUDA}, "
               "c10d Gloo ${VJEPA_TORCH_GLOO}, NCCL ${VJEPA_TORCH_NCCL}; C++${CMAKE_CXX_STANDARD})")
