# One image for every process of compose.yaml: web (uvicorn), cdc_listen, migrate, demo writers.
# Dependencies come from uv.lock, exactly as `python3 dev.py` installs them (less the dev and
# bench groups).
FROM python:3.11-slim

# Keep in step with dev.py's UV_VERSION (tests/system/test_compose.py checks).
ARG UV_VERSION=0.13.9
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/app/.venv/bin:$PATH

WORKDIR /app
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-cache
COPY . .

RUN useradd --system --no-create-home app
USER app
EXPOSE 8000 9100
CMD ["python", "-m", "uvicorn", "--host", "0.0.0.0", "--port", "8000", "--loop", "uvloop", "--http", "httptools", "--ws", "wsproto", "--ws-max-size", "1048576", "--lifespan", "off", "--no-proxy-headers", "--no-access-log", "--log-level", "warning", "core.asgi:application"]
