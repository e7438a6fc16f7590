# syntax=docker/dockerfile:1
#
# The ledgerd image: a static binary on distroless, running as nonroot
# (65532). Build from the repository root (the Go workspace):
#
#   docker build -f deployments/ledgerd.Dockerfile -t subsidyledger/ledgerd:dev .
#
# ledgerctl (the operator's and auditor's tool) is built too. The context is
# filtered by ledgerd.Dockerfile.dockerignore beside this file.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY . .
# The module and build caches survive between builds (BuildKit cache mounts);
# the go.work at the root builds the four workspace modules together.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    mkdir -p /out/bin /out/data; \
    go build -trimpath -ldflags='-s -w' -o /out/bin/ledgerd ./services/cmd/ledgerd; \
    go build -trimpath -ldflags='-s -w' -o /out/bin/ledgerctl ./services/cmd/ledgerctl; \
    cd deployments/probe && GOWORK=off go build -trimpath -ldflags='-s -w' -o /out/bin/probe .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
# The data directory: projection checkpoints, and with the bolt store the
# event store and the embedded NATS server's files. Owned by nonroot so that
# a fresh named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/data/ /var/lib/ledgerd/
ENV LEDGER_DATA_DIR=/var/lib/ledgerd \
    LEDGER_HTTP_LISTEN=0.0.0.0:8080 \
    LEDGER_NATS_LISTEN=0.0.0.0:4222
USER 65532:65532
VOLUME ["/var/lib/ledgerd"]
# 8080: /healthz, /readyz, /metrics (and the API). 4222: the embedded NATS
# server, only when no --nats-url is given (a single-node demo).
EXPOSE 8080 4222
ENTRYPOINT ["/usr/local/bin/ledgerd"]
