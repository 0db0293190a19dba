# The LibTorch core (services/trainer/{model,vjepa,checkpoint,probe}, common/masking, and the
# header-only common/core) and its benchmark. Included by the full build and by
# -DVJEPA_CORE_ONLY=ON, which configures only this, with find_package(Torch) alone.
if(NOT Torch_FOUND)
  find_package(Torch REQUIRED)
endif()
# Debian's TorchConfig adds its flags to TORCH_CXX_FLAGS; keep them target-scoped.
add_library(vjepa_torch INTERFACE)
target_link_libraries(vjepa_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(vjepa_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
separate_arguments(_vjepa_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(vjepa_torch INTERFACE ${_vjepa_torch_flags})

foreach(dir common/core common/masking services/trainer/model services/trainer/checkpoint
            services/trainer/probe services/trainer/vjepa bench/trainer_step)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${dir}/CMakeLists.txt)
    add_subdirectory(${CMAKE_SOURCE_DIR}/${dir} ${CMAKE_BINARY_DIR}/${dir})
  endif()
endforeach()
if(VJEPA_CORE_ONLY)
  message(STATUS "vjepa: core-only build with LibTorch ${Torch_VERSION}")
endif()
