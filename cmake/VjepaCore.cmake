# The LibTorch core (services/trainer/model, services/trainer/vjepa, common/masking) and its
# benchmark. Included by both the full build and -DVJEPA_CORE_ONLY=ON, which configures only this.
# The folders are added as they gain sources.
foreach(dir common/masking services/trainer/model services/trainer/vjepa)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${dir}/CMakeLists.txt)
    add_subdirectory(${CMAKE_SOURCE_DIR}/${dir} ${CMAKE_BINARY_DIR}/${dir})
  endif()
endforeach()
if(VJEPA_CORE_ONLY)
  message(STATUS "vjepa: core-only build with LibTorch ${Torch_VERSION}")
endif()
