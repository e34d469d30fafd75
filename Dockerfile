# hostbridge: one image holding the four binaries (data-host, training-host, api-gateway
# and the hostbridge CLI). docker-compose.yml runs each service from it with its own
# command. Built with BuildKit (the default builder of Docker 23+; DOCKER_BUILDKIT=1 on
# older engines) for the cache mounts. No `# syntax=` line: the engine's built-in
# Dockerfile frontend is used, so building never pulls a frontend image.
#
# Where a registry is reachable (rust:… and debian:bookworm-slim are pulled):
#   docker build -t hostbridge:local .
#   docker compose --profile sim up -d --build   # ... plus the IB Gateway simulator
#
# Where none is (the engine has no images), the runtime base is made from Debian's
# packages and the binaries come from the host's own cargo build:
#   scripts/docker-base-image.sh                 # debootstrap → hostbridge-base:bookworm
#   cargo build --workspace --bins               # or a test run, which builds them
#   mkdir -p target/docker-bin && cp target/debug/{data-host,training-host,api-gateway,hostbridge} target/docker-bin/
#   docker build --target prebuilt --build-arg RUNTIME_IMAGE=hostbridge-base:bookworm \
#       -t hostbridge:local .
# tests/tests/compose.rs does exactly that, then runs docker-compose.yml on the image.

# The builder and runtime bases are arguments so a local or mirrored image can stand in.
# The builder pins a 1.x at least the newest rust-version in the locked dependency graph
# (1.95: sysinfo 0.39, via polars), on the same Debian release (bookworm) as the runtime
# base, so the binaries link against the glibc they run with.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- runtime base ----------------------------------------------------------------------
# Everything of the final image but the binaries; both final targets below start here.
FROM ${RUNTIME_IMAGE} AS runtime-base

# ca-certificates only: reqwest uses rustls, and healthchecks run the binaries' own
# `healthcheck` subcommand, so there is no curl or wget in this image. A base made by
# scripts/docker-base-image.sh has them already, and this step then needs no network.
RUN if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The service user; and no set-uid/set-gid file (su, passwd, mount, …) it could use to
# become root.
RUN groupadd --system --gid 10001 hostbridge \
    && useradd --system --uid 10001 --gid hostbridge --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin hostbridge \
    && find / -xdev -type f -perm /6000 -exec chmod a-s {} +

# Bundled sample bars (served by `data-host ib-sim`) and example strategies, read-only.
COPY data /app/data-sample
COPY strategies /app/strategies

# The store and the model store are volumes. Creating them here, owned by the service
# user, makes a fresh named volume start with that ownership, so the non-root services
# can write to it.
RUN mkdir -p /app/data /app/models && chown hostbridge:hostbridge /app/data /app/models

WORKDIR /app
# Numeric, so orchestrators can verify it is not root (runAsNonRoot).
USER 10001:10001
VOLUME ["/app/data", "/app/models"]

ENV RUST_LOG=info

# No entrypoint: docker-compose.yml gives each service its command, e.g.
#   docker run --rm -p 127.0.0.1:8000:8000 hostbridge:local \
#     api-gateway serve --bind 0.0.0.0:8000 --data-dir /app/data
CMD ["hostbridge", "--help"]

# ---- prebuilt: binaries built on the host -----------------------------------------------
# For CI and machines without a registry: the four binaries from the build context
# (PREBUILT_DIR, which .dockerignore lets through from target/), built on the same Debian
# release. Nothing is compiled here.
FROM runtime-base AS prebuilt
ARG PREBUILT_DIR=target/docker-bin
COPY ${PREBUILT_DIR}/data-host ${PREBUILT_DIR}/training-host ${PREBUILT_DIR}/api-gateway ${PREBUILT_DIR}/hostbridge /usr/local/bin/

# ---- builder (where a registry is reachable) -------------------------------------------
FROM ${RUST_IMAGE} AS builder

WORKDIR /src
COPY . .

# The registry and the target directory live in cache mounts, so a rebuild after a source
# change recompiles only the workspace crates (polars & co. stay built). The cache mount
# is not part of the image: the binaries are copied out in the same step.
RUN --mount=type=cache,id=hostbridge-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=hostbridge-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=hostbridge-target,target=/src/target,sharing=locked \
    cargo build --release --locked \
        --bin data-host --bin training-host --bin api-gateway --bin hostbridge \
    && mkdir -p /out \
    && cp target/release/data-host target/release/training-host \
          target/release/api-gateway target/release/hostbridge /out/

# ---- runtime (the default target) --------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=builder /out/data-host /out/training-host /out/api-gateway /out/hostbridge /usr/local/bin/
