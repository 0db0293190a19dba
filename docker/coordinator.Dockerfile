# The coordinator: the job API, the scheduler and the SQLite store (with checkpoints) in
# /var/lib/vjepa. Build from the repository root:
#   docker build -f docker/coordinator.Dockerfile -t vjepa-coordinator .

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
      bash scripts/build.sh vjepa-coordinator vjepactl \
 && strip --strip-debug build/bin/vjepa-coordinator build/bin/vjepactl

# ---- runtime: the shared libraries the two binaries load, nothing else
FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libgoogle-glog0v6 libgrpc++1.51 libgrpc29 libprotobuf32 \
      libprometheus-cpp-core1.0 libsqlite3-0 libyaml-cpp0.7 libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 vjepa \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vjepa --create-home \
      --shell /usr/sbin/nologin vjepa
COPY --from=build /src/build/bin/vjepa-coordinator /src/build/bin/vjepactl /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/vjepa
VOLUME ["/var/lib/vjepa"]
# 50051: the gRPC API (jobs, workers, checkpoints, health); 9090: /metrics.
EXPOSE 50051 9090
# grpc.health.v1.Health needs no token. With TLS on (--tls_cert/--tls_key) override this check
# with one that passes --tls-ca (see docker/README.md).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/vjepactl", "health", "--address=127.0.0.1:50051", "--timeout=3"]
ENTRYPOINT ["/usr/local/bin/vjepa-coordinator"]
# Arguments replace all of these: mount the tokens file (TOKEN NAME ROLE per line) at
# /etc/vjepa/auth/tokens or pass another --auth_tokens.
CMD ["--listen=0.0.0.0:50051", "--metrics_listen=0.0.0.0:9090", "--data_dir=/var/lib/vjepa", \
     "--auth_tokens=/etc/vjepa/auth/tokens"]
