# syntax=docker/dockerfile:1
#
# Biddt image: by default granian serves REST, admin and docs (WSGI) on port 8000. The same
# image runs the socket server (uvicorn, /ws/), the Celery worker and beat and the one-shot
# migration (see docker-compose.yml).
#
#   docker build -t biddt .

# Debian 12 (bookworm) explicitly: the apt pins below are that release's versions.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a wheel for every pinned requirement ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# A compiler only for the rare pin without a binary wheel; it stays in this stage.
# Exact bookworm versions (build-essential and what it pulls in), so a rebuild installs the
# same tools; when a Debian point release or security update replaces one, the build fails
# here and the pin is bumped to `apt-cache policy <package>` in a bookworm container
# (README, "Docker"). libc6-dev must equal the base image's libc6.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential=12.9 \
        gcc=4:12.2.0-3 \
        g++=4:12.2.0-3 \
        make=4.3-4.1 \
        dpkg-dev=1.21.23 \
        libc6-dev=2.36-9+deb12u14 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /wheels
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_SETTINGS_MODULE=biddt.settings \
    BIDDT_ENVIRONMENT=production

RUN groupadd --system --gid 10001 biddt \
    && useradd --system --uid 10001 --gid biddt --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin biddt

# Install from the build stage's wheels without copying them into a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r /wheels/requirements.txt

WORKDIR /app
# The code stays owned by root (read-only for the app user); only media/ is writable, for
# the local-storage fallback when AWS_STORAGE_BUCKET_NAME is unset.
COPY . .
RUN mkdir -p /app/media && chown biddt:biddt /app/media

# The French and English messages (locale/*.po → .mo) with Babel: no GNU gettext needed.
RUN python -m biddt.locale_build

# collectstatic is the one command the production start-up checks let run without the
# runtime secrets (biddt/core/apps.py); no database is touched.
RUN python manage.py collectstatic --noinput -v1

# Numeric, so Kubernetes' runAsNonRoot can check it (deploy/k8s).
USER 10001:10001

EXPOSE 8000

# Liveness of the HTTP server. Production settings reject a Host outside ALLOWED_HOSTS and
# redirect plain HTTP to HTTPS, so the probe sends the first allowed host and the header a
# TLS-terminating proxy would add.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "http", "8000"]

# Threads per process that run requests (each keeps a database connection); override with
# GRANIAN_BLOCKING_THREADS. The client IP comes from X-Forwarded-For only through
# BIDDT_NUM_PROXIES (set it to 1 behind deploy/nginx.conf).
ENV GRANIAN_BLOCKING_THREADS=8
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", "--workers", "1", \
     "--no-ws", "--log-level", "warning", "biddt.wsgi:application"]
