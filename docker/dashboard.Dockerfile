# footfall dashboard plugin — runs next to Mosquitto (and often Home Assistant) on the home server.
#   docker build -f docker/dashboard.Dockerfile -t footfall-dashboard .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge_agent ./edge_agent
COPY plugin ./plugin
COPY hardware_profiles ./hardware_profiles
# The PostgreSQL driver is included so the same image serves a home (SQLite) and a club (docs/club.md).
RUN python -m venv /opt/footfall \
    && /opt/footfall/bin/pip install --no-cache-dir ".[postgresql]"

FROM python:3.11-slim-bookworm
COPY --from=build /opt/footfall /opt/footfall
RUN useradd --system --uid 10002 --home-dir /var/lib/footfall --create-home footfall
ENV PATH=/opt/footfall/bin:$PATH \
    PYTHONUNBUFFERED=1
USER 10002
WORKDIR /var/lib/footfall
VOLUME ["/var/lib/footfall"]
EXPOSE 8765
# The dashboard needs its token once it listens beyond loopback, so the probe sends it (from the env, not argv).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request as u; t=os.environ.get('FOOTFALL_DASHBOARD_TOKEN',''); u.urlopen(u.Request('http://127.0.0.1:8765/api/health', headers={'Authorization': 'Bearer '+t} if t else {}), timeout=4)"]
ENTRYPOINT ["footfall-dashboard"]
CMD ["run", "--config", "/etc/footfall/dashboard.yaml"]
