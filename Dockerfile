# Production image: gunicorn with uvicorn workers and the settings in gunicorn.conf.py.
#
#   docker build -t storefront-graphql .
#   docker run --rm --env-file prod.env storefront-graphql alembic upgrade head   # migrations: a separate step
#   docker run -d -p 8000:8000 --env-file prod.env storefront-graphql
#
# docker-compose.yml runs the same two commands as its `migrate` and `app` services.
#
# GraphiQL is off in production (APP_ENV=production), so the image leaves out its assets, which
# `make install` downloads from the npm registry (`python -m api.graphiql`). With GRAPHIQL=true the
# IDE page would load and say that they are missing.

# ---- builder: the locked dependencies into /app/.venv, then the code, compiled --------------------
FROM python:3.12-slim AS builder

# The same uv as the Makefile's UV_VERSION.
RUN pip install --no-cache-dir uv==0.13.9

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependency layer: rebuilt only when pyproject.toml or uv.lock change, not on every code change.
# `tool.uv.package = false`: the project itself is never installed, its code is copied below.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.12

COPY alembic.ini gunicorn.conf.py ./
COPY migrations ./migrations
COPY schema ./schema
COPY domains ./domains
COPY tasks ./tasks
COPY api ./api
COPY scripts ./scripts
# The trusted-documents manifest (TRUSTED_DOCUMENTS_ONLY reads it at start-up; `make codegen` writes it).
COPY examples/trusted-documents.json ./examples/trusted-documents.json
# The runtime user cannot write __pycache__, so compile here once.
RUN python -m compileall -q api domains schema tasks scripts migrations

# ---- runtime: the interpreter, the venv and the code; no uv, no build tools --------------------------
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/app/.venv/bin:$PATH" \
    APP_ENV=production \
    GUNICORN_CMD_ARGS="--worker-tmp-dir /dev/shm"
# GUNICORN_CMD_ARGS: gunicorn's worker heartbeat touches a file every second; on the overlay
# filesystem of /tmp that can stall a worker, on /dev/shm (a tmpfs) it cannot.

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=builder /app /app

USER 10001:10001
EXPOSE 8000

# Liveness only (/health/ready also checks the database). slim has no curl, hence urllib. The Host
# header is taken from TRUSTED_HOSTS ("*.example.com" becomes "healthcheck.example.com"), or
# TrustedHostMiddleware would answer 400; the port follows GUNICORN_BIND.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; host = os.environ.get('TRUSTED_HOSTS', 'localhost').split(',')[0].strip().replace('*', 'healthcheck'); port = os.environ.get('GUNICORN_BIND', ':8000').rpartition(':')[2]; r.urlopen(r.Request(f'http://127.0.0.1:{port}/health', headers={'Host': host}), timeout=4)"]

# Exec form: gunicorn is PID 1 and gets SIGTERM itself, so `docker stop` drains in-flight requests
# (graceful_timeout 30 s; give the container a stop timeout above that).
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
