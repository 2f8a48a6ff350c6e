"""Reading settings from the environment, failing loudly with the variable's name.

Every value may also come from a file named by ``<NAME>_FILE`` (Docker / Kubernetes secrets).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_required(name: str, why: str) -> str:
    value = env_str(name)
    if value is None:
        raise ImproperlyConfigured(f"{name} must be set: {why}")
    return value


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if not number >= minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def database_from_url(name: str, url: str) -> dict[str, object]:
    """Django DATABASES entry from ``postgres://user:pass@host:port/db`` (psycopg 3)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(
            f"{name}={url!r}: only postgres:// or postgresql:// URLs are supported"
        )
    if not parsed.path.strip("/"):
        raise ImproperlyConfigured(f"{name}={url!r} names no database (postgres://host/DBNAME)")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.path.strip("/"),
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # A pool, not persistent connections: under ASGI every request runs in a thread of its
        # own, so per-thread persistent connections pile up until PostgreSQL refuses clients.
        "CONN_MAX_AGE": 0,
        # min_size 0: no connection is opened before the first query needs one.
        "OPTIONS": {"pool": {"min_size": 0, "max_size": 20, "timeout": 30}},
    }


def check_redis_url(name: str, url: str) -> str:
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ImproperlyConfigured(
            f"{name}={url!r}: expected redis://host:port/db, rediss:// or unix:///path"
        )
    return url
