# footfall edge agent — linux/arm64 (64-bit Raspberry Pi OS; numba has no armv7 wheels) and linux/amd64.
#   docker buildx build --platform linux/arm64,linux/amd64 -f docker/agent.Dockerfile -t footfall-agent .
FROM python:3.11-slim-bookworm AS build
# gcc builds spidev (the MCP3008 extra) where no wheel exists, and links the ahead-of-time kernels.
# Pinning Debian package versions breaks across arm64/amd64 point releases; the base image is pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge_agent ./edge_agent
COPY plugin ./plugin
COPY hardware_profiles ./hardware_profiles
RUN python -m venv /opt/footfall \
    && /opt/footfall/bin/pip install --no-cache-dir ".[serial,ble,adc]"
# The step kernels compiled ahead of time for the architecture's baseline CPU (the image may run
# on another machine than the one that built it): the agent then
# never loads numba/LLVM (≈ 100 MB less RSS, no JIT at start-up). Keyed to this exact code.
RUN /opt/footfall/bin/footfall-agent build-kernels --cpu generic --dir /opt/footfall/kernels

FROM python:3.11-slim-bookworm
# bluez's D-Bus socket is mounted from the host for BLE insoles; the image itself needs no extra packages.
COPY --from=build /opt/footfall /opt/footfall
RUN useradd --system --uid 10001 --home-dir /var/lib/footfall --create-home footfall \
    && mkdir -p /var/cache/footfall \
    && chown footfall:footfall /var/cache/footfall
ENV PATH=/opt/footfall/bin:$PATH \
    NUMBA_CACHE_DIR=/var/cache/footfall \
    FOOTFALL_KERNEL_DIR=/opt/footfall/kernels \
    FOOTFALL_STATE_DIR=/var/lib/footfall \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /var/lib/footfall
VOLUME ["/var/lib/footfall", "/var/cache/footfall"]
# Healthy while the agent's heartbeat file (rewritten every few seconds by `footfall-agent run`) is fresh.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["footfall-agent", "health", "--max-age", "60"]
ENTRYPOINT ["footfall-agent"]
CMD ["run", "--config", "/etc/footfall/agent.yaml"]
