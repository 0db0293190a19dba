# The dataworker service: stream buffers and producer threads (data_service), the gRPC adapter,
# the coordinator client, the server wrapper, and main.cc. Included by CMakeLists.txt here.
find_package(glog CONFIG REQUIRED)

set(_dw ${CMAKE_CURRENT_SOURCE_DIR})

vjepa_library(vjepa_dataworker_service
  SRCS ${_dw}/batch_producer.cc ${_dw}/synthetic_producer.cc ${_dw}/dataworker_metrics.cc
       ${_dw}/data_service.cc ${_dw}/wire.cc ${_dw}/grpc_data_service.cc
       ${_dw}/coordinator_client.cc ${_dw}/dataworker_server.cc ${_dw}/stream_client.cc
       ${_dw}/malloc_tuning.cc
  DEPS vjepa_proto vjepa_rpc vjepa_worker_client vjepa_metrics vjepa_spec vjepa_status vjepa_video
       glog::glog absl::status absl::statusor absl::strings absl::synchronization absl::time
       absl::flat_hash_map absl::flat_hash_set)

# Test helpers: the stream test utilities and an in-process fake coordinator.
vjepa_library(vjepa_dataworker_testing
  SRCS ${_dw}/test_util.cc ${_dw}/fake_coordinator.cc
  DEPS vjepa_dataworker_service vjepa_metrics vjepa_test_cluster absl::strings
       absl::synchronization absl::time)

vjepa_test(dataworker_service_test
  SRCS ${_dw}/data_service_test.cc
  DEPS vjepa_dataworker_service vjepa_dataworker_testing vjepa_status)

vjepa_test(dataworker_grpc_test
  SRCS ${_dw}/grpc_data_service_test.cc ${_dw}/coordinator_client_test.cc
  DEPS vjepa_dataworker_service vjepa_dataworker_testing vjepa_test_cluster vjepa_testing
       vjepa_status)

# The real producers (BatchBuilder over shared datasets), the dataset pre-flight and the binary.
vjepa_library(vjepa_dataworker_builder
  SRCS ${_dw}/builder_producer.cc ${_dw}/check.cc
  DEPS vjepa_dataworker_service vjepa_batch vjepa_video vjepa_masking
       nlohmann_json::nlohmann_json absl::strings absl::str_format absl::synchronization)

vjepa_binary(vjepa-dataworker
  SRCS ${_dw}/main.cc
  DEPS vjepa_dataworker_builder vjepa_dataworker_service absl::flags absl::flags_parse
       absl::flags_usage absl::flags_usage_internal glog::glog)

vjepa_test(dataworker_builder_test
  SRCS ${_dw}/builder_producer_test.cc
  DEPS vjepa_dataworker_builder vjepa_dataworker_testing vjepa_testing vjepa_status)

vjepa_test(dataworker_check_test
  SRCS ${_dw}/check_test.cc
  DEPS vjepa_dataworker_builder vjepa_dataworker_testing vjepa_testing vjepa_status)

# The binary as a process: a generated dataset served in standalone mode, SIGTERM.
vjepa_test(dataworker_process_test
  SRCS ${_dw}/dataworker_process_test.cc
  DEPS vjepa_dataworker_service vjepa_dataworker_testing vjepa_test_cluster vjepa_testing
       vjepa_status nlohmann_json::nlohmann_json
  SERIAL LABELS integration)
vjepa_test_dependencies(dataworker_process_test vjepa-dataworker)
