# The LibTorch core (services/trainer/{model,vjepa,checkpoint,probe}, common/masking, and the
# header-only common/core) and its benchmark. Included by the full build and by
# -DVJEPA_CORE_ONLY=ON, which configures only this, with find_package(Torch) alone.
include(VjepaTorch)

foreach(dir common/core common/masking services/trainer/model services/trainer/checkpoint
            services/trainer/probe services/trainer/vjepa bench/trainer_step)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${dir}/CMakeLists.txt)
    add_subdirectory(${CMAKE_SOURCE_DIR}/${dir} ${CMAKE_BINARY_DIR}/${dir})
  endif()
endforeach()
if(VJEPA_CORE_ONLY)
  message(STATUS "vjepa: core-only build")
endif()
