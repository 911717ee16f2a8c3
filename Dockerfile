# syntax=docker/dockerfile:1
# docker build --build-arg FLEET_EXPORTER_REVISION="$(git rev-parse --short HEAD)" -t fleet-exporter .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
ARG FLEET_EXPORTER_REVISION=unknown
ENV FLEET_EXPORTER_REVISION=${FLEET_EXPORTER_REVISION}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin fleet-exporter \
    && cp target/release/fleet-exporter /usr/local/bin/

# glibc and nothing else: no shell, no package manager; runs as uid 65532. reqwest brings its
# own root certificates (rustls with webpki roots), so the image needs no CA bundle.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/fleet-exporter /usr/local/bin/fleet-exporter
COPY config/fleet-exporter.example.toml /etc/fleet-exporter/fleet-exporter.example.toml
USER 65532:65532
EXPOSE 9877
# The binary checks itself: the image has no curl or shell.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["/usr/local/bin/fleet-exporter", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/fleet-exporter"]
CMD ["--config.file=/etc/fleet-exporter/fleet-exporter.toml"]
