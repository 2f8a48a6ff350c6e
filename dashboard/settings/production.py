"""Production shape: PostgreSQL, an external Redis, secrets from the environment.

Start-up fails with the variable's name when one is missing or malformed.
"""

from __future__ import annotations

from dashboard.env import env_required, env_str

for _name, _why in [
    ("DATABASE_URL", "postgres://user:password@host:5432/tuneboard"),
    ("REDIS_URL", "redis://host:6379/0 (Celery broker, Channels layer and cache)"),
    ("SECRET_KEY", "a long random string for Django's signing"),
    ("CREDENTIALS_KEY", "a Fernet key that encrypts provider API keys at rest"),
    ("ALLOWED_HOSTS", "the host names this site answers to, comma-separated"),
    ("TUNEBOARD_PUBLIC_URL", "the https:// address pods use to reach this server"),
]:
    env_required(_name, _why)

from dashboard.settings.base import *  # noqa: E402, F403

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_str("SESSION_COOKIE_SECURE", "true") == "true"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
