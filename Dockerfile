# The face detection server: Daphne on port 8282. See docker-compose.yml for Redis and PostgreSQL.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# The code stays root's and read-only to the server; it writes only the static files it collects at
# start and its state under /data.
RUN useradd --create-home --uid 10001 faces \
    && mkdir -p /app/staticfiles /data/media \
    && chown -R faces:faces /app/staticfiles /data
USER faces

# /data holds the SQLite database (without DATABASE_URL), the secret key generated once (without
# SECRET_KEY) and the media; a volume, so they outlive the container.
ENV PORT=8282 \
    STATE_DIR=/data \
    STATIC_ROOT=/app/staticfiles
EXPOSE 8282
VOLUME ["/data"]

# /healthz answers whatever Host it is sent, so the check passes whatever ALLOWED_HOSTS says.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8282'), timeout=4)"]

ENTRYPOINT ["./entrypoint.sh"]
