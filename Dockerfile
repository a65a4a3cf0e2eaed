# Production image: gunicorn + whitenoise for the web, the same image runs the Celery worker
# and beat (see docker-compose.yml). Build: docker build -t opencs .
FROM python:3.11-slim

# gunicorn reads WEB_CONCURRENCY as its worker count (gunicorn.conf.py: threaded workers,
# one per core; GUNICORN_THREADS threads each, default 8)
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=2 \
    MEDIA_ROOT=/app/media

WORKDIR /app
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin app

# Dependencies first, in their own layer: pyproject.toml lists them and installs no package
# of its own (the code runs from /app), so a code change does not reinstall them.
# No [dev] extras: test tools stay out of the image.
COPY pyproject.toml README.md ./
RUN pip install .

# owned by root: the app user can read its code but not change it; only media/ is writable
COPY . .

# Static files are collected at build time into the image (served by whitenoise). Settings
# need a secret and a database URL to load in the production profile; these dummies exist
# for this one command only and are not part of the image's environment.
RUN DJANGO_SECRET_KEY=collectstatic-only-build-secret-not-used-at-run-time-0123456789 \
    DATABASE_URL=postgres://build@localhost:5432/build \
    python manage.py collectstatic --no-input --verbosity 0 \
 && mkdir -p /app/media \
 && chown app:app /app/media

USER app
EXPOSE 8000

# /healthz answers 200 when the app can reach its database. The request names host
# "localhost", so DJANGO_ALLOWED_HOSTS must include localhost (see .env.example).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://localhost:8000/healthz', timeout=4).status == 200 else 1)"]

# gunicorn.conf.py (read from /app) holds the server's settings: config.wsgi:application
# on 0.0.0.0:8000, gthread workers, keep-alive for the reverse proxy's connections, no access
# log (the proxy logs requests; GUNICORN_CMD_ARGS="--access-logfile -" turns it on)
CMD ["gunicorn"]
