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
RUN useradd --create-home --uid 10001 faces \
    && mkdir -p /app/media /app/staticfiles /app/state \
    && chown -R faces:faces /app/media /app/staticfiles /app/state
USER faces

# The secret key is generated once into the state volume unless SECRET_KEY is set.
ENV PORT=8282 \
    MEDIA_ROOT=/app/media \
    STATIC_ROOT=/app/staticfiles \
    SECRET_KEY_FILE=/app/state/secret_key
EXPOSE 8282
VOLUME ["/app/media", "/app/state"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8282'), timeout=4)"]

ENTRYPOINT ["./entrypoint.sh"]
