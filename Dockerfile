# The image the Kubernetes manifests name:
#   ghcr.io/wasmcloud-provisioner/wasmcloud-provisioner:0.1.0
# Build: docker build -t ghcr.io/wasmcloud-provisioner/wasmcloud-provisioner:0.1.0 .
# (Not built in this project's CI, which has no container registry to pull base images
# from; `make test` only checks this file's shape. See README.)

# Build stage: a static musl binary, so the runtime image needs no libc.
FROM rust:1.89-alpine3.22 AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY schemas ./schemas
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin wasmcloud-provisioner \
 && install -D -m 0755 target/release/wasmcloud-provisioner /out/wasmcloud-provisioner

# Runtime stage: no shell, no package manager; CA certificates for tls:// servers.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wasmcloud-provisioner /usr/local/bin/wasmcloud-provisioner
# distroless' nonroot user (65532), as the manifests' securityContext expects.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wasmcloud-provisioner"]
CMD ["serve"]
