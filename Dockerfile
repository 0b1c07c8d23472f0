# holdless container images. The default (last) stage is holdless itself: a release build
# on Debian, run as a non-root user. docker-compose.yml also builds the `kamailio` stage
# (the dispatcher in front of the nodes) and the `smoke` stage (SIPp).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

# Kamailio from Debian, for configs/examples/cluster/kamailio.cfg.
FROM debian:bookworm-slim AS kamailio
RUN apt-get update && apt-get install -y --no-install-recommends kamailio \
    && rm -rf /var/lib/apt/lists/*
COPY configs/examples/cluster /etc/kamailio/holdless
ENTRYPOINT ["kamailio", "-DD", "-E", "-f", "/etc/kamailio/holdless/kamailio.cfg", \
    "-A", "DISPATCHER_LIST=\"/etc/kamailio/holdless/dispatcher.list\""]

# SIPp from Debian (sip-tester, with its DTMF pcaps) and the demo's caller.
FROM debian:bookworm-slim AS smoke
RUN apt-get update && apt-get install -y --no-install-recommends sip-tester \
    && rm -rf /var/lib/apt/lists/*
COPY sip-tests/demo /smoke
WORKDIR /smoke

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/holdless holdless && mkdir -p /var/lib/holdless/data \
    && chown -R holdless /var/lib/holdless
COPY --from=build /src/target/release/holdless /usr/local/bin/holdless
COPY configs /etc/holdless
# The example configurations name their prompts and files relative to the repository
# root (configs/...): the working directory has the same layout.
RUN ln -s /etc/holdless /var/lib/holdless/configs
USER holdless
WORKDIR /var/lib/holdless
ENTRYPOINT ["holdless"]
CMD ["run", "--config", "/etc/holdless/holdless.toml"]
