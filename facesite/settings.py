"""Settings for facesite, read from the environment (see the README's table)."""

import os
import secrets
from pathlib import Path

import dj_database_url

from facesite.caches import caches
from facesite.env import env_bool, env_choice, env_float, env_int, env_list, env_str
from facesite.hosts import machine_hosts
from facesite.layers import channel_layers
from facesite.sqlite import SQLITE_ENGINE
from facesite.task_backends import rq_queues, task_backends
from vision.engines import DEFAULT_ENGINE, ENGINES
from vision.profiles import MAX_DETECT_EVERY, PROFILES

BASE_DIR = Path(__file__).resolve().parent.parent
# What the server writes unless told otherwise: the SQLite database, the generated secret key and the
# media. This folder by default (`make run`); /data in the Docker image, whose code folder is read-only.
STATE_DIR = Path(env_str("STATE_DIR", str(BASE_DIR)))


def _secret_key() -> str:
    """SECRET_KEY from the environment, or generated once into an untracked file."""
    if key := env_str("SECRET_KEY"):
        return key
    path = Path(env_str("SECRET_KEY_FILE", str(STATE_DIR / ".secret_key")))
    try:
        # O_EXCL: when several processes start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as key_file:
        key_file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", machine_hosts())
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Scheme and host that clients use to reach this server, e.g. https://faces.example.com.
# Empty: every response uses the host the client itself asked for.
PUBLIC_URL = env_str("PUBLIC_URL").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_tasks",
    "detection",
    "access",
    "live",
    "videos",
    "axes",  # admin login: lockout after repeated wrong passwords
]

MIDDLEWARE = [
    "facesite.middleware.RequestLogMiddleware",
    "detection.errors_http.BodylessErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "facesite.middleware.CommonMiddlewareExceptProbes",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

# django-axes first: it refuses an address locked out for wrong passwords before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

ROOT_URLCONF = "facesite.urls"
ASGI_APPLICATION = "facesite.asgi.application"
APPEND_SLASH = False  # API clients POST to /image exactly; a redirect would drop the body.

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{STATE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == SQLITE_ENGINE:
    DATABASES["default"]["OPTIONS"] = {
        # WAL: readers do not wait for the writer, and a commit does not wait for the disk (a power
        # cut can lose the last commits, never corrupt the file). IMMEDIATE: a writer takes the lock
        # when its transaction begins, so concurrent uploads wait their turn instead of failing
        # with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
CHANNEL_LAYERS = channel_layers(
    REDIS_URL,
    max_connections=env_int("REDIS_MAX_CONNECTIONS", 1000),
    # Several deployments can share one Redis with a prefix each.
    prefix=env_str("CHANNEL_LAYER_PREFIX", "asgi"),
    layer=env_str("CHANNEL_LAYER", "core"),
)

# Where detections run (facesite/task_backends.py): "immediate" (default) inside each upload's request;
# "rq" on workers (`make worker`) that take them from a queue in REDIS_URL, the upload answered 202.
TASKS_BACKEND = env_str("TASKS_BACKEND", "immediate")
TASKS = task_backends(TASKS_BACKEND, redis_url=REDIS_URL)

# Videos (POST /video): the most bytes, seconds and pixels (width x height) one may have (413 past
# them, checked before any work), and the defaults of their options. A video is processed by the
# `process_video` task: in embedded mode on a background thread of the server, in queue mode by the
# workers (queue "videos"), each allowed VIDEO_JOB_TIMEOUT seconds (default: 20 s per second of the
# longest video allowed).
MAX_VIDEO_BYTES = env_int("MAX_VIDEO_BYTES", 500 * 1024 * 1024, minimum=1)
MAX_VIDEO_SECONDS = env_float("MAX_VIDEO_SECONDS", 600)
MAX_VIDEO_PIXELS = env_int("MAX_VIDEO_PIXELS", 3840 * 2160, minimum=1)
# Frames a second (phones' slow motion is 240): the work is per frame, and a tiny frame costs bytes.
MAX_VIDEO_FPS = env_float("MAX_VIDEO_FPS", 240)
# Videos waiting or running at once, beyond which uploads are refused (503 with Retry-After): a few
# kilobytes of video can cost an hour of CPU, so the queue is bounded as well as the upload rate.
MAX_PENDING_VIDEOS = env_int("MAX_PENDING_VIDEOS", 20, minimum=1)
# A video's defaults, from `make bench-video` (README): fast at 0.3 every 2nd frame met the coverage
# targets on the sample (99.87% of easy + medium face-frames, none uncovered more than 2 frames in a
# row); every 3rd frame left one uncovered for 4, at 0.4 more were (README's sweep); balanced costs
# about twice the CPU.
VIDEO_DETECT_EVERY = env_int("VIDEO_DETECT_EVERY", 2, minimum=1, maximum=MAX_DETECT_EVERY)
VIDEO_PROFILE = env_choice("VIDEO_PROFILE", "fast", choices=PROFILES)
VIDEO_MIN_CONFIDENCE = env_float("VIDEO_MIN_CONFIDENCE", 0.3)
VIDEO_BODY_TIMEOUT = env_float("VIDEO_BODY_TIMEOUT", 1800)  # seconds a /video body may take to arrive
VIDEO_JOB_TIMEOUT = env_int("VIDEO_JOB_TIMEOUT", max(3600, round(20 * MAX_VIDEO_SECONDS)), minimum=1)
if TASKS_BACKEND == "rq":
    INSTALLED_APPS.append("django_rq")  # the queue's connection, its worker, and its page in the admin
    RQ_QUEUES = rq_queues(REDIS_URL, video_timeout=VIDEO_JOB_TIMEOUT)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(STATE_DIR / "media")))
# Media on S3-compatible storage (several machines): pip install "django-storages[s3]" and set
# AWS_STORAGE_BUCKET_NAME (plus AWS_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... as django-storages reads them).
MEDIA_STORAGE = (
    {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": env_str("AWS_STORAGE_BUCKET_NAME")}}
    if env_str("AWS_STORAGE_BUCKET_NAME")
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
)
STORAGES = {
    "default": MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Upload limits. Uploads above FILE_UPLOAD_MAX_MEMORY_SIZE spool to a temporary file.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 50_000_000)
# Decoding work in proportion to the bytes sent: above the floor, an image needs a byte per
# MAX_PIXELS_PER_BYTE pixels (photos have 2 to 120, bombs thousands); a JPEG at most MAX_JPEG_SCANS scans.
MAX_PIXELS_PER_BYTE = env_int("MAX_PIXELS_PER_BYTE", 250)
PIXELS_PER_BYTE_FLOOR = env_int("PIXELS_PER_BYTE_FLOOR", 4_000_000)
MAX_JPEG_SCANS = env_int("MAX_JPEG_SCANS", 32)
# `manage.py prune_detections` deletes detections older than this many days; 0 keeps everything.
RETENTION_DAYS = env_int("RETENTION_DAYS", 0, minimum=0)

# Detector: the profile (fast, balanced, accurate) and score threshold used unless a request asks
# otherwise, the threads each detection may use (0: one per core), and the engine every detection
# runs on (float or int8 weights, vision/engines.py).
DETECTOR_PROFILE = env_choice("DETECTOR_PROFILE", "balanced", choices=PROFILES)
DETECTOR_MIN_CONFIDENCE = env_float("DETECTOR_MIN_CONFIDENCE", 0.7)
DETECTOR_THREADS = env_int("DETECTOR_THREADS", 1)
DETECTOR_ENGINE = env_choice("DETECTOR_ENGINE", DEFAULT_ENGINE, choices=ENGINES)
# The defaults when the copy is to hide the faces (annotate=blur or pixelate): a face missed stays
# recognisable, a patch of background blurred costs little (README, "Anonymising").
ANONYMISE_PROFILE = env_choice("ANONYMISE_PROFILE", "balanced", choices=PROFILES)
ANONYMISE_MIN_CONFIDENCE = env_float("ANONYMISE_MIN_CONFIDENCE", 0.4)
# Detections one process runs at once (default: one per core, each on DETECTOR_THREADS threads)
# and how many more may wait; past that, uploads get 503 with Retry-After.
DETECTION_WORKERS = env_int("DETECTION_WORKERS", os.cpu_count() or 1)
# (`make bench-load`: with 2 x cores waiting, 16 concurrent uploaders already got 503s.)
DETECTION_QUEUE = env_int("DETECTION_QUEUE", 16 * (os.cpu_count() or 1))

# API keys: from the environment (comma-separated) and/or created in the admin, stored hashed.
# With none configured the API is open to everyone.
API_KEYS = env_list("API_KEYS", [])
API_KEYS_REQUIRED_FOR_READ = env_bool("API_KEYS_REQUIRED_FOR_READ", False)
# Requests per client (API key, or address without one), e.g. "60/min"; empty: unlimited.
THROTTLE_RATES = {
    "uploads": env_str("THROTTLE_UPLOADS", "60/min"),
    "reads": env_str("THROTTLE_READS", "1200/min"),
}
# Wrong API keys (or admin passwords) one client address may send in a window from the first one;
# past that, API requests with a key get 429 with Retry-After and the admin login is locked. 0: no limit.
AUTH_FAILURE_LIMIT = env_int("AUTH_FAILURE_LIMIT", 10)
AUTH_FAILURE_WINDOW_SECONDS = env_int("AUTH_FAILURE_WINDOW_SECONDS", 600)
# Websocket connections one client address may hold open on /faces (per process).
WEBSOCKET_MAX_PER_CLIENT = env_int("WEBSOCKET_MAX_PER_CLIENT", 50)
# Unread bytes a websocket client may leave queued in this server before it is disconnected.
WEBSOCKET_MAX_BUFFER_BYTES = env_int("WEBSOCKET_MAX_BUFFER_BYTES", 1024 * 1024)
# What a client of a listen-only websocket (/faces) may send per 10 s (pongs, a close) before it is
# disconnected with 1008; its messages are dropped where they arrive (facesite/transport.py).
WEBSOCKET_LISTENER_FRAMES = env_int("WEBSOCKET_LISTENER_FRAMES", 20)
WEBSOCKET_LISTENER_BYTES = env_int("WEBSOCKET_LISTENER_BYTES", 64 * 1024)
# Daphne pings each websocket client this often when it is quiet, and drops one that has not
# answered a ping within WEBSOCKET_PING_TIMEOUT seconds.
WEBSOCKET_PING_INTERVAL = env_int("WEBSOCKET_PING_INTERVAL", 20)
WEBSOCKET_PING_TIMEOUT = env_int("WEBSOCKET_PING_TIMEOUT", 30)
# Live streams (/stream): the profile a stream's frames get unless it asks otherwise, the most bytes
# and pixels one frame may have (a larger message closes the socket with 1009), the streams one client
# address may hold open (per process), and what one stream may send per 10 s (else closed with 1008).
STREAM_PROFILE = env_choice("STREAM_PROFILE", "fast", choices=PROFILES)
STREAM_MAX_FRAME_BYTES = env_int("STREAM_MAX_FRAME_BYTES", 2 * 1024 * 1024, minimum=1)
STREAM_MAX_FRAME_PIXELS = env_int("STREAM_MAX_FRAME_PIXELS", 1920 * 1080, minimum=1)
STREAM_MAX_PER_CLIENT = env_int("STREAM_MAX_PER_CLIENT", 4)
STREAM_BUDGET_FRAMES = env_int("STREAM_BUDGET_FRAMES", 600, minimum=1)
STREAM_BUDGET_BYTES = env_int("STREAM_BUDGET_BYTES", 200 * 1024 * 1024, minimum=1)
# Cameras (the admin's): in embedded mode (no REDIS_URL) the server's process watches them itself, so
# `make run` alone serves cameras and announces their faces to its own /faces clients. With REDIS_URL,
# watcher processes do (`make cameras`, compose's cameras service), beside any number of servers.
CAMERAS_IN_SERVER = env_bool("CAMERAS_IN_SERVER", not REDIS_URL)
# Slow clients: seconds a request's headers, then its body, may take to arrive (else 408), and the
# connections (HTTP and websockets) one client address may hold open per process; 0: no cap.
HTTP_HEADERS_TIMEOUT = env_float("HTTP_HEADERS_TIMEOUT", 10)
HTTP_BODY_TIMEOUT = env_float("HTTP_BODY_TIMEOUT", 120)
MAX_CONNECTIONS_PER_CLIENT = env_int("MAX_CONNECTIONS_PER_CLIENT", 100)
# Behind a proxy: the client address and scheme come from X-Forwarded-* (and every connection comes
# from the proxy, so MAX_CONNECTIONS_PER_CLIENT does not apply: cap connections in the proxy).
PROXY_HEADERS = env_bool("PROXY_HEADERS", False)
# WORKERS > 1: a server process that dies is restarted, at most this many times a minute (then the
# launcher stops the others and exits).
WORKER_RESTARTS_PER_MINUTE = env_int("WORKER_RESTARTS_PER_MINUTE", 5)
# Proxies in front whose X-Forwarded-For to trust for the client address (1 behind one nginx).
NUM_PROXIES = env_int("NUM_PROXIES", 0)

# Seconds the rate limits wait for Redis (to connect, then for each answer) before letting a request
# through uncounted.
CACHES = caches(REDIS_URL, timeout=env_float("REDIS_CACHE_TIMEOUT", 0.5))

# Admin login (django-axes, counts in the database: shared by every process, and independent of Redis).
AXES_ENABLED = AUTH_FAILURE_LIMIT > 0
AXES_FAILURE_LIMIT = AUTH_FAILURE_LIMIT
AXES_COOLOFF_TIME = AUTH_FAILURE_WINDOW_SECONDS / 3600  # hours
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "access.throttling.client_address"  # the same address as the API's limits

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["access.permissions.KeyRequiredWhenConfigured"],
    "DEFAULT_THROTTLE_CLASSES": ["access.throttling.ClientRateThrottle"],
    "NUM_PROXIES": NUM_PROXIES,  # for DRF's own get_ident; ours is access.throttling.client_address
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "detection.errors_http.api_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Face detection server",
    "DESCRIPTION": "Upload a photo, get the faces and an annotated copy; new detections are "
    "pushed to every client of the websocket /faces.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request components, so file fields are documented as binary uploads.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default
        "detection.serializers.upload_form_defaults",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "facesite.logs.JsonFormatter"},
    },
    # LOG_FORMAT=plain for people reading a terminal; json (default) for log collectors.
    "filters": {"client_mistakes": {"()": "facesite.logs.ClientMistakesAsWarnings"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "json"),
            "filters": ["client_mistakes"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-tasks logs every task's start and end; ours log their outcome (detection done / failed).
    # django-axes announces its version at every start of every command (its failures and lockouts stay).
    "loggers": {"django_tasks": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}
CSRF_FAILURE_VIEW = "detection.errors_http.csrf_failure"

# Security headers. X-Content-Type-Options, Referrer-Policy and X-Frame-Options come from
# SecurityMiddleware and XFrameOptionsMiddleware; the page at / sends its own Content-Security-Policy.
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# HTTPS=true when clients reach the server over TLS (a proxy in front terminating it): secure cookies,
# HSTS and a redirect from plain HTTP. Off by default, for the plain-HTTP LAN service of `make run`.
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes talk plain HTTP inside the network
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    # Off unless chosen: they bind every subdomain, and browsers' preload list, for as long as HSTS
    # lasts; `check --deploy` warns about them (W005, W021) until they are on.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
else:
    # `check --deploy` warns about exactly what HTTPS=true turns on; without TLS they would lock users out.
    SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012", "security.W016"]
