# A CUDA trainer: the same trainer built against an upstream LibTorch with CUDA
# (-DVJEPA_TORCH_UPSTREAM=ON: version checks where the API differs, NCCL from the devel image's
# nccl.h; docs/gpu.md). Start it with --device=cuda. Build from the repository root on a machine with
# network access (the LibTorch zip is downloaded while the image builds):
#   docker build -f docker/trainer-cuda.Dockerfile -t vjepa-trainer-cuda .
# Build arguments (defaults below):
#   CUDA_IMAGE     the nvidia/cuda devel image of the build stage
#   CUDA_RUNTIME   the nvidia/cuda runtime image of the final stage (same CUDA and cuDNN)
#   LIBTORCH_URL   the "shared-with-deps" LibTorch zip for that CUDA version (cxx11 ABI)
#   BUILD_JOBS     parallel compile jobs
# Ubuntu 24.04 carries the same gRPC 1.51, protobuf 3.21 and Abseil 20220623 as Debian 12, so the
# services' code builds unchanged; LibTorch comes from the zip, not from the distribution.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04
ARG CUDA_RUNTIME=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---- build
FROM ${CUDA_IMAGE} AS build
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/cu126/libtorch-cxx11-abi-shared-with-deps-2.6.0%2Bcu126.zip
ARG BUILD_JOBS=4
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates curl unzip \
      libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libgoogle-glog-dev libgflags-dev \
      libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libopencv-dev \
      prometheus-cpp-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libssl-dev \
      googletest libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL --retry 3 -o /tmp/libtorch.zip "${LIBTORCH_URL}" \
 && unzip -q /tmp/libtorch.zip -d /opt \
 && rm /tmp/libtorch.zip \
 && test -f /opt/libtorch/share/cmake/Torch/TorchConfig.cmake
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY proto/ proto/
COPY common/ common/
COPY services/ services/
COPY cli/ cli/
COPY bench/ bench/
COPY tests/ tests/
COPY scripts/build.sh scripts/
RUN BUILD_DIR=/src/build BUILD_JOBS="${BUILD_JOBS}" BUILD_TYPE=RelWithDebInfo \
      EXTRA_CMAKE_ARGS="-DVJEPA_TORCH_UPSTREAM=ON -DCMAKE_PREFIX_PATH=/opt/libtorch" \
      bash scripts/build.sh vjepa-trainer vjepactl \
 && strip --strip-debug build/bin/vjepa-trainer build/bin/vjepactl

# ---- runtime: CUDA and cuDNN from the base image, LibTorch's libraries from the zip, the
# distribution's libraries of the services' code (Ubuntu 24.04 names, with its t64 suffixes;
# unlike the Debian images these names are not checked by tests/docker_test.sh)
FROM ${CUDA_RUNTIME}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623t64 libgoogle-glog0v6t64 libgrpc++1.51t64 libgrpc29t64 libprotobuf32t64 \
      libprometheus-cpp-core1.0 libyaml-cpp0.8 libstdc++6 libgomp1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/libtorch/lib/ /opt/libtorch/lib/
ENV LD_LIBRARY_PATH=/opt/libtorch/lib
RUN groupadd --system --gid 10001 vjepa \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vjepa-trainer --create-home \
      --shell /usr/sbin/nologin vjepa
COPY --from=build /src/build/bin/vjepa-trainer /src/build/bin/vjepactl /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/vjepa-trainer
ENV OMP_WAIT_POLICY=PASSIVE
# 9090: /metrics. Rank 0 also serves the c10d store on a free port of --advertise_address.
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/vjepactl", "health", "--http=127.0.0.1:9090", "--timeout=3"]
ENTRYPOINT ["/usr/local/bin/vjepa-trainer"]
# Arguments replace these; a trainer also needs --coordinator=HOST:PORT, --token_file=FILE and
# --advertise_address=POD_IP. Run with the GPUs passed in (docker run --gpus all ...).
CMD ["--metrics_listen=0.0.0.0:9090", "--work_dir=/var/lib/vjepa-trainer", "--device=cuda"]
