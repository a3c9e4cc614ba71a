# sfbridge workers, admin CLI and Salesforce emulator in one image.
#   docker build -t sfbridge:local .
# Stage 1 builds with the project's Makefile on Debian 12 (bookworm) with the -dev packages;
# stage 2 carries only the runtime libraries and runs as an unprivileged user.
# The image's command is chosen per service in docker-compose.yml (sfbridge-sync, sfbridge migrate, ...).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config \
      librdkafka-dev libcurl4-openssl-dev libjson-c-dev libpq-dev libssl-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# only what the build needs (see .dockerignore); migrations and schemas are compiled in
COPY Makefile ./
COPY common/ common/
COPY workers/ workers/
COPY migrations/ migrations/
COPY schemas/ schemas/
COPY tests/rig/embed tests/rig/embed
COPY tests/sfsim/ tests/sfsim/
RUN make -j"$(nproc)" all CI=true \
 && strip build/bin/*

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libcurl4 libjson-c5 libpq5 libssl3 libmicrohttpd12 ca-certificates \
      curl openssl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sfbridge \
 && useradd --system --uid 10001 --gid sfbridge --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin sfbridge \
 && mkdir -p /certs && chown sfbridge:sfbridge /certs
COPY --from=build /src/build/bin/ /usr/local/bin/
USER 10001:10001
# /metrics, /healthz and /readyz of every worker
ENV SFBRIDGE_METRICS_ADDR=0.0.0.0:9100
EXPOSE 9100
CMD ["sfbridge", "--help"]
