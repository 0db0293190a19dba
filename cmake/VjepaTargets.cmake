# One library per folder, tests beside the code.
#
#   vjepa_library(NAME SRCS a.cc ... DEPS dep ... [TORCH])
#   vjepa_test(NAME SRCS a_test.cc ... DEPS dep ... [SERIAL] [LABELS l ...])
#   vjepa_binary(NAME SRCS main.cc DEPS dep ...)
#
# Our code compiles with warnings as errors; generated code (proto/) is exempt.
# With VJEPA_SANITIZE, targets that do not link LibTorch get ASan+UBSan.

# -Wno-dangling-pointer: GCC 12 reports false positives inside yaml-cpp 0.7's inline node code.
set(VJEPA_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
                   -Wno-dangling-pointer)
if(VJEPA_WERROR)
  list(APPEND VJEPA_WARNINGS -Werror)
endif()

function(_vjepa_common target torch)
  target_compile_options(${target} PRIVATE ${VJEPA_WARNINGS})
  if(VJEPA_SANITIZE AND NOT torch)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

function(vjepa_library name)
  cmake_parse_arguments(A "TORCH" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} ${A_SRCS})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
  _vjepa_common(${name} "${A_TORCH}")
endfunction()

function(vjepa_binary name)
  cmake_parse_arguments(A "TORCH" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${A_SRCS})
  target_link_libraries(${name} PRIVATE ${A_DEPS})
  _vjepa_common(${name} "${A_TORCH}")
endfunction()

# add_dependencies for a test target: nothing when tests are not built.
function(vjepa_test_dependencies name)
  if(TARGET ${name})
    add_dependencies(${name} ${ARGN})
  endif()
endfunction()

function(vjepa_test name)
  if(NOT VJEPA_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "TORCH;SERIAL" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${A_SRCS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gmock GTest::gtest_main)
  _vjepa_common(${name} "${A_TORCH}")
  add_test(NAME ${name} COMMAND ${name})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  set(labels ${A_LABELS})
  if(NOT labels)
    set(labels unit)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS "${labels}"
    ENVIRONMENT "VJEPA_BIN_DIR=${CMAKE_BINARY_DIR}/bin;VJEPA_SOURCE_DIR=${CMAKE_SOURCE_DIR};OMP_WAIT_POLICY=PASSIVE")
  if(A_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  # LibTorch-free unit tests also run under ASan+UBSan (target sanitized_tests, label sanitize).
  if(NOT A_TORCH AND "unit" IN_LIST labels)
    set_property(TEST ${name} APPEND PROPERTY LABELS sanitize)
    set_property(GLOBAL APPEND PROPERTY VJEPA_SANITIZED_TESTS ${name})
  endif()
endfunction()

# Call once at the end of the top-level CMakeLists.
function(vjepa_sanitized_tests_target)
  get_property(tests GLOBAL PROPERTY VJEPA_SANITIZED_TESTS)
  add_custom_target(sanitized_tests)
  if(tests)
    add_dependencies(sanitized_tests ${tests})
  endif()
endfunction()
