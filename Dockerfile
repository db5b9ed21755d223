# syntax=docker/dockerfile:1
# Switchboard's two images from one build (docs/images.md), tagged as charts/switchboard/values.yaml
# names them, with the chart's appVersion:
#
#   docker build --target gateway  -t ghcr.io/switchboard/switchboard-gateway:0.1.0 .
#   docker build --target operator -t ghcr.io/switchboard/switchboard-operator:0.1.0 .
#
# The binaries are static (scripts/build-static, which tests/e2e/tests/images.rs runs too, and
# which fails if either binary needs a loader), so the final stages are distroless/static: CA
# certificates, tzdata, /etc/passwd with the nonroot user, no shell, no libc.

# The toolchain the workspace pins (rust-version in Cargo.toml), on the Debian the images' glibc
# comes from.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit cache mounts keep downloaded crates and compiled dependencies between builds on one
# builder, so a source change recompiles only the workspace crates; the script copies the
# binaries out of the cached target directory into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-static /out

FROM gcr.io/distroless/static-debian12:nonroot AS operator
LABEL org.opencontainers.image.title="switchboard-operator" \
      org.opencontainers.image.description="Switchboard's operator: compiles the custom resources into the gateways' config" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/switchboard/switchboard"
COPY --from=build /out/switchboard-operator /usr/local/bin/switchboard-operator
# distroless's nonroot, by number: the chart's runAsNonRoot can only verify a numeric user.
USER 65532:65532
# The snapshot stream and the admin port (probes, /metrics): operator.ports in the chart's values.
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/switchboard-operator"]
CMD ["run"]

FROM gcr.io/distroless/static-debian12:nonroot AS gateway
LABEL org.opencontainers.image.title="switchboard-gateway" \
      org.opencontainers.image.description="Switchboard's data plane: an OpenAI-compatible LLM gateway" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/switchboard/switchboard"
COPY --from=build /out/switchboard-gateway /usr/local/bin/switchboard-gateway
USER 65532:65532
# The binary listens on loopback unless told otherwise; in a container that would be unreachable.
# The chart passes --listen and --admin-listen itself, which take precedence.
ENV SWITCHBOARD_LISTEN=0.0.0.0:8080 \
    SWITCHBOARD_ADMIN_LISTEN=0.0.0.0:9090
# The API and the admin port (probes, /metrics): gateway.ports in the chart's values.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/switchboard-gateway"]
CMD ["serve"]
