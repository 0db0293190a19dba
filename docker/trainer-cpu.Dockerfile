# A CPU trainer (Debian's LibTorch 1.13 with OpenBLAS): trains the jobs the coordinator assigns,
# pulls batches from the dataworkers and all-reduces with the job's other trainers (c10d, Gloo).
# Build from the repository root:
#   docker build -f docker/trainer-cpu.Dockerfile -t vjepa-trainer-cpu .

# ---- build: the Debian packages of scripts/setup.sh that compiling needs, then scripts/build.sh
FROM debian:bookworm AS build
ARG BUILD_JOBS=4
ENV DEBIAN_FRONTEND=noninteractive
# The configure step finds every dependency of the project (and GoogleTest, needed to configure),
# so each image's build stage installs the same list; only the named targets are compiled.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libtorch-dev libopenblas0-pthread libgloo-dev \
      libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libgoogle-glog-dev libgflags-dev \
      libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libopencv-dev \
      prometheus-cpp-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libssl-dev \
      googletest libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
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
      bash scripts/build.sh vjepa-trainer vjepactl \
 && strip --strip-debug build/bin/vjepa-trainer build/bin/vjepactl

# ---- runtime: the shared libraries the two binaries load. libtorch1.13 brings its own
# dependencies (Gloo, OpenCV, FFmpeg, ...); libopenblas0-pthread is the BLAS it should use
# (reference BLAS is ~25x slower).
FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libgoogle-glog0v6 libgrpc++1.51 libgrpc29 libprotobuf32 \
      libprometheus-cpp-core1.0 libyaml-cpp0.7 libstdc++6 \
      libtorch1.13 libopenblas0-pthread \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 vjepa \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vjepa-trainer --create-home \
      --shell /usr/sbin/nologin vjepa
COPY --from=build /src/build/bin/vjepa-trainer /src/build/bin/vjepactl /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/vjepa-trainer
# libgomp's spinning slows LibTorch by up to ~100x when another process holds a core.
ENV OMP_WAIT_POLICY=PASSIVE
# 9090: /metrics. Rank 0 also serves the c10d store on a free port of --advertise_address.
EXPOSE 9090
# The trainer serves no gRPC: its health is its /metrics endpoint answering 200.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/vjepactl", "health", "--http=127.0.0.1:9090", "--timeout=3"]
ENTRYPOINT ["/usr/local/bin/vjepa-trainer"]
# Arguments replace these; a trainer also needs --coordinator=HOST:PORT, --token_file=FILE and
# --advertise_address=POD_IP (reachable by the job's other trainers).
CMD ["--metrics_listen=0.0.0.0:9090", "--work_dir=/var/lib/vjepa-trainer"]
