# One image with every binary: compose picks one with `command`.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
# .git stays out of the build context (.dockerignore), so Go records no
# revision: pass one, e.g. --build-arg VERSION=$(git describe --always --dirty).
ARG VERSION=unknown
RUN go build -trimpath -ldflags="-s -w -X github.com/streamsaga/streamsaga/internal/cli.stamp=${VERSION}" \
      -o /out/ ./cmd/api ./cmd/worker ./cmd/sagactl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080 9091
# CMD, not ENTRYPOINT, so that compose's `command` selects the binary.
CMD ["api"]
