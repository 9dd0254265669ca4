# One image recipe for every Go binary of the workspace: docker build --build-arg SERVICE=auth .
FROM golang:1.26 AS build
ARG SERVICE
WORKDIR /src
COPY . .
RUN test -n "$SERVICE" && CGO_ENABLED=0 go -C "$SERVICE" build -trimpath -o /out/app "./cmd/$SERVICE"

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER nonroot
ENTRYPOINT ["/app"]
