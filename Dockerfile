# One image per service of the monorepo: a static Go binary on an empty base image.
#
#   docker build --build-arg SERVICE=api -t api .
#   docker build --build-arg SERVICE=status --build-arg GO_IMAGE=golang:1.26-alpine -t status .
#
# `mage deploy` and `mage image:build` send a build context of only the service's inputs (see
# internal/inputs), so a change to another service never invalidates a layer of this one.
# GO_IMAGE is the builder; any image with a Go toolchain >= go.mod's works. Its name is an
# input of the content tag: pin it by digest for byte-for-byte reproducible images.
ARG GO_IMAGE=golang:1.26-bookworm

# The dependencies every service links, compiled once in a layer that changes only with
# go.mod/go.sum and what the services import: a code change then recompiles just the service.
# `mage` passes DEPS, computed from what services/ imports (image.ThirdPartyImports), so a
# service with a new dependency needs no edit here; a plain `docker build` skips this warm-up.
FROM ${GO_IMAGE} AS deps
WORKDIR /src
# nethttpomithttp2: the services speak plain HTTP/1.1 (TLS ends at the ingress or gateway), so
# net/http's HTTP/2 stack is dead weight; dropping it keeps each image under 10 MB.
ENV CGO_ENABLED=0 GOFLAGS="-trimpath -tags=nethttpomithttp2" GOTOOLCHAIN=local
COPY go.mod go.sum ./
ARG DEPS=""
RUN if [ -n "${DEPS}" ]; then go build ${DEPS}; fi

FROM deps AS build
COPY services/ services/
ARG SERVICE=api
ARG VERSION=dev
# Only what follows from the content tag's inputs goes into the bytes: the version (the tag),
# no commit and no build time (the commit is in the image's signed provenance).
RUN go build -o /out/app \
      -ldflags "-s -w -X github.com/dtap-platform/monorepo/services/kit.version=${VERSION}" \
      ./services/${SERVICE}

FROM scratch
ARG SERVICE=api
ARG SOURCE=https://github.com/dtap-platform/monorepo
ARG VERSION=dev
LABEL org.opencontainers.image.title="${SERVICE}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/app /app
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/app"]
