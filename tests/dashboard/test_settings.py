"""Settings fail at start-up with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/tuneboard",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "x" * 50,
    "CREDENTIALS_KEY": "E5iNhDJQG6XdVqVqXLMkzW0QlGKO1eNEVp-XnnFT-h8=",
    "ALLOWED_HOSTS": "tuneboard.example",
    "TUNEBOARD_PUBLIC_URL": "https://tuneboard.example",
}


def load(settings: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    clean.update(env, TUNEBOARD_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE=settings)
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_names_each_missing_variable(tmp_path: Path) -> None:
    for missing in PRODUCTION_ENV:
        env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
        result = load("dashboard.settings.production", env, tmp_path)
        assert result.returncode != 0
        assert f"{missing} must be set" in result.stderr, (missing, result.stderr[-500:])


def test_production_uses_postgres_when_everything_is_set(tmp_path: Path) -> None:
    result = load("dashboard.settings.production", PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_a_malformed_database_url_is_refused_by_name(tmp_path: Path) -> None:
    result = load("dashboard.settings.base", {"DATABASE_URL": "mysql://x/y"}, tmp_path)
    assert "DATABASE_URL='mysql://x/y'" in result.stderr


def test_a_malformed_redis_url_is_refused_by_name(tmp_path: Path) -> None:
    result = load("dashboard.settings.base", {"REDIS_URL": "http://x"}, tmp_path)
    assert "REDIS_URL='http://x'" in result.stderr


def test_the_embedded_default_needs_no_variables(tmp_path: Path) -> None:
    result = load("dashboard.settings.base", {}, tmp_path)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "django.db.backends.sqlite3"
