# syntax=docker/dockerfile:1
#
# hostbridge: one image holding the four binaries (data-host, training-host, api-gateway
# and the hostbridge CLI). docker-compose.yml runs each service from it with its own
# command. Needs BuildKit (the default builder of Docker 23+) for the cache mounts.
#
#   docker build -t hostbridge:local .
#   docker compose up -d --build               # data-host, training-host, api-gateway
#   docker compose --profile sim up -d --build # ... plus the IB Gateway simulator

# ---- builder ---------------------------------------------------------------------------
# The builder pins a 1.x at least the newest rust-version in the locked dependency graph
# (1.95: sysinfo 0.39, via polars; the workspace itself says 1.90), on the same Debian
# release (bookworm) as the runtime stage, so the binaries link against the glibc they run
# with. tests/tests/compose.rs checks both.
FROM rust:1.95-bookworm AS builder

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

# ---- runtime ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates only: reqwest uses rustls, and healthchecks run the binaries' own
# `healthcheck` subcommand, so there is no curl or wget in this image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 hostbridge \
    && useradd --system --uid 10001 --gid hostbridge --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin hostbridge

COPY --from=builder /out/data-host /out/training-host /out/api-gateway /out/hostbridge /usr/local/bin/

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
