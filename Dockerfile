# syntax=docker/dockerfile:1
# docker build --build-arg FLEET_EXPORTER_REVISION="$(git rev-parse --short HEAD)" -t fleet-exporter .
#
# Multi-arch: `docker buildx build --platform linux/amd64,linux/arm64 ...` builds each platform in
# its own build stage (natively or under emulation); nothing here names a host architecture, and
# the cargo caches are kept apart per platform. .ci/container builds this file unchanged.
FROM rust:1.95-slim-bookworm AS build
ARG TARGETPLATFORM
WORKDIR /src
COPY . .
ARG FLEET_EXPORTER_REVISION=unknown
ENV FLEET_EXPORTER_REVISION=${FLEET_EXPORTER_REVISION}
RUN --mount=type=cache,target=/usr/local/cargo/registry,id=fleet-exporter-registry \
    --mount=type=cache,target=/src/target,id=fleet-exporter-target-${TARGETPLATFORM} \
    cargo build --release --locked --bin fleet-exporter \
    && cp target/release/fleet-exporter /usr/local/bin/

# glibc and nothing else: no shell, no package manager; runs as uid 65532. reqwest brings its
# own root certificates (rustls with webpki roots), so the image needs no CA bundle.
FROM gcr.io/distroless/cc-debian12:nonroot
# The version is Cargo.toml's (.ci/container fails when they differ); the revision is the
# build argument above.
ARG FLEET_EXPORTER_VERSION=0.1.0
ARG FLEET_EXPORTER_REVISION=unknown
LABEL org.opencontainers.image.title="fleet-exporter" \
      org.opencontainers.image.description="Prometheus exporter for iKuai routers, Komari monitors, OpenVox VoIP gateways and IoT SIM devices" \
      org.opencontainers.image.source="https://github.com/fleet-exporter/fleet-exporter" \
      org.opencontainers.image.version="${FLEET_EXPORTER_VERSION}" \
      org.opencontainers.image.revision="${FLEET_EXPORTER_REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /usr/local/bin/fleet-exporter /usr/local/bin/fleet-exporter
COPY config/fleet-exporter.example.toml /etc/fleet-exporter/fleet-exporter.example.toml
USER 65532:65532
EXPOSE 9877
# The binary checks itself: the image has no curl or shell.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["/usr/local/bin/fleet-exporter", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/fleet-exporter"]
CMD ["--config.file=/etc/fleet-exporter/fleet-exporter.toml"]
