# syntax=docker/dockerfile:1
# The strata image: one static binary (CGO_ENABLED=0) on a distroless base,
# running as an unprivileged user. `make image` builds it; the Helm chart
# runs it with `router` or `blockbuilder` as its argument.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
# Build tags, e.g. --build-arg TAGS=gcs for objstore's native GCS client.
ARG TAGS=
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -tags "${TAGS}" -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/strata ./cmd/strata

# No shell, no package manager: only CA certificates (for HTTPS object
# storage), time zone data and the binary.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/strata /usr/bin/strata
# The distroless "nonroot" user; the chart's podSecurityContext uses the same.
USER 65532:65532
# 19291: remote-write, /metrics, /-/ready, /-/healthy. 10901: StoreAPI.
EXPOSE 19291 10901
ENTRYPOINT ["/usr/bin/strata"]
