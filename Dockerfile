# holdless container image: a release build on Debian, run as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/holdless holdless && mkdir -p /var/lib/holdless/data \
    && chown -R holdless /var/lib/holdless
COPY --from=build /src/target/release/holdless /usr/local/bin/holdless
COPY configs /etc/holdless
USER holdless
WORKDIR /var/lib/holdless
ENTRYPOINT ["holdless"]
CMD ["run", "--config", "/etc/holdless/holdless.toml"]
