# syntax=docker/dockerfile:1
# Sandport's container image:
#   docker build -t sandport .
#   docker run -v sandport-data:/var/lib/sandport \
#     -v "$PWD/connectors.yaml:/etc/sandport/connectors.yaml:ro" \
#     -p 127.0.0.1:8080:8080 -p 127.0.0.1:50051:50051 -p 127.0.0.1:9464:9464 sandport
# docs/operations.md has the rest.

# The toolchain of the workspace's rust-version (Cargo.toml). The build
# compiles the built-in connectors for wasm32-wasip2 and embeds them.
FROM rust:1.95-trixie AS builder
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sandport \
    && install -m 0755 target/release/sandport /usr/local/bin/sandport

# The same Debian release as the builder, so the binary finds the glibc it
# was linked against.
FROM debian:trixie-slim
# ca-certificates: the roots that https:// connectors are checked against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sandport \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sandport \
       --no-create-home --shell /usr/sbin/nologin sandport \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/sandport \
    && install -d -m 0755 /etc/sandport
COPY --from=builder /usr/local/bin/sandport /usr/local/bin/sandport
# A default config (it watches localhost, so mount your own over it).
COPY config/connectors.yaml /etc/sandport/connectors.yaml
# registry.json, uploaded components and the compiled-component cache all
# live in the data dir, so one volume keeps everything across restarts.
ENV SANDPORT_CACHE_DIR=/var/lib/sandport/cache
VOLUME /var/lib/sandport
USER 10001:10001
# gRPC, REST, and the metrics-only listener.
EXPOSE 50051 8080 9464
ENTRYPOINT ["/usr/local/bin/sandport"]
# --insecure: the APIs listen on every interface without TLS or tokens.
# Do not publish these ports as they are: add --tokens FILE (and --tls-cert
# and --tls-key), or keep them on a private network (a NetworkPolicy on
# Kubernetes). The metrics listener serves only /metrics.
CMD ["serve", "--config", "/etc/sandport/connectors.yaml", "--data-dir", "/var/lib/sandport", \
     "--grpc-addr", "0.0.0.0:50051", "--http-addr", "0.0.0.0:8080", \
     "--metrics-addr", "0.0.0.0:9464", "--insecure"]
