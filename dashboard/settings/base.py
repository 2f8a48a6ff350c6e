"""Settings shared by every run mode.

With no environment variables this is the embedded default: SQLite and a private Redis under
``var/``. ``DATABASE_URL`` and ``REDIS_URL`` switch to the production shape (PostgreSQL, an
external Redis) with no other change. ``production.py`` adds the checks a public server needs.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import (
    check_redis_url,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_str,
)

# Lets typed code subscript Django's generic classes (UserCreationForm[User]) at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("TUNEBOARD_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _var_secret(file_name: str, make: str) -> str:
    """A secret generated once and kept in var/ — the embedded mode's way to need no setup."""
    path = VAR_DIR / file_name
    if not path.exists():
        path.write_text(make)
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = env_str("SECRET_KEY") or _var_secret("secret_key", secrets.token_urlsafe(50))
# Encrypts provider API keys at rest (Fernet). Losing it makes stored keys unreadable.
CREDENTIALS_KEY = env_str("CREDENTIALS_KEY") or _var_secret("credentials_key", _fernet_key())
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = (env_str("ALLOWED_HOSTS") or "localhost,127.0.0.1,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in (env_str("CSRF_TRUSTED_ORIGINS") or "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "providers",
    "jobs",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"
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

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": database_from_url("DATABASE_URL", _database_url)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # SQLITE_PATH lets a test's worker and server processes open the test database.
            "NAME": env_str("SQLITE_PATH") or VAR_DIR / "tuneboard.sqlite3",
            # WAL + a busy timeout let the web process, the worker and beat share one file.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis carries the Celery broker, the Channels layer and the cache. In the embedded mode
# `manage.py embedded` (or the test settings) starts a private server and sets REDIS_URL for
# its children; a bare `manage.py` command with no REDIS_URL uses the embedded socket path.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = check_redis_url("REDIS_URL", env_str("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}")
EMBEDDED = env_str("DATABASE_URL") is None and env_str("REDIS_URL") is None

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "tuneboard",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": "tuneboard",
            # A live message is a notification, the database the truth (DESIGN §6): a slow
            # socket drops messages past this and the page backfills over REST.
            "capacity": 500,
            "expiry": 30,
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at start-up when it is missing
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tuneboard API",
    "DESCRIPTION": "Configure, launch and watch LLM fine-tunes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery: JSON only, late acks with one message prefetched, so a worker that dies mid-task
# leaves the message for another (our tasks are idempotent and cap redeliveries themselves).
CELERY_BROKER_URL = REDIS_URL.replace("unix://", "redis+socket://", 1)
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# An unacknowledged task (its worker died) is redelivered after this long.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT_S", 600, minimum=5)
}
CELERY_TASK_ALWAYS_EAGER = False

# Tuneboard's own settings.
# The address pods use to reach the ingest API. Embedded: this machine.
TUNEBOARD_PUBLIC_URL = (env_str("TUNEBOARD_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
DATASET_MAX_BYTES = env_int("DATASET_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
INGEST_MAX_BATCH_EVENTS = env_int("INGEST_MAX_BATCH_EVENTS", 500, minimum=1)
INGEST_MAX_BATCH_BYTES = env_int("INGEST_MAX_BATCH_BYTES", 1024 * 1024, minimum=1024)
INGEST_REPORT_INTERVAL_S = 2.0
# A terminal job's token still works this long, for the trainer's final flush.
INGEST_TOKEN_GRACE_S = env_int("INGEST_TOKEN_GRACE_S", 300)
LOCAL_PROVIDER_COST_PER_HOUR = env_float("LOCAL_PROVIDER_COST_PER_HOUR", 0.0)
RUNPOD_BASE_URL = (env_str("RUNPOD_BASE_URL") or "https://api.runpod.io").rstrip("/")
RUNPOD_IMAGE = env_str("RUNPOD_IMAGE") or "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
# How often beat polls pods (status, cost, budget) and lists every provider's pods for orphans.
POLL_INTERVAL_S = env_float("POLL_INTERVAL_S", 5.0)
RECONCILE_INTERVAL_S = env_float("RECONCILE_INTERVAL_S", 60.0)
# A stop the trainer has not honoured after this long becomes a terminate.
STOP_GRACE_S = env_int("STOP_GRACE_S", 120)
# The budget watch asks for a graceful stop when the budget left covers less than this much
# running time; a launch claimed by a worker that died is re-claimable after LAUNCH_LEASE_S;
# a pod that exited while its job is live gets EXIT_GRACE_S for the trainer's final report.
GRACEFUL_STOP_MARGIN_S = env_int("GRACEFUL_STOP_MARGIN_S", 180)
LAUNCH_LEASE_S = env_int("LAUNCH_LEASE_S", 300, minimum=5)
EXIT_GRACE_S = env_int("EXIT_GRACE_S", 20)
# A running job silent this long, or a launch without a pod this long, is failed.
STUCK_AFTER_S = env_int("STUCK_AFTER_S", 900, minimum=60)
PROVISION_TIMEOUT_S = env_int("PROVISION_TIMEOUT_S", 1800, minimum=60)
CELERY_BEAT_SCHEDULE = {
    "poll-jobs": {"task": "tuneboard.poll_jobs", "schedule": POLL_INTERVAL_S},
    "reconcile": {"task": "tuneboard.reconcile", "schedule": RECONCILE_INTERVAL_S},
    "fail-stuck-jobs": {"task": "tuneboard.fail_stuck_jobs", "schedule": 60.0},
}

if DATASET_MAX_BYTES < 1024:
    raise ImproperlyConfigured("DATASET_MAX_BYTES must be at least 1024 bytes")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
