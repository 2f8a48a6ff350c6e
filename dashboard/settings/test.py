"""Test settings: the same code as production.

With DATABASE_URL / REDIS_URL set (CI) the suite runs against real PostgreSQL and Redis;
without them it runs embedded: SQLite and a private Redis started here for the session.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

if not os.environ.get("TUNEBOARD_VAR_DIR"):
    os.environ["TUNEBOARD_VAR_DIR"] = tempfile.mkdtemp(prefix="tuneboard-test-")

if not os.environ.get("REDIS_URL"):
    from dashboard.embedded import start_private_redis

    # Children (workers, servers started by tests) inherit it through the environment.
    _redis = start_private_redis(Path(os.environ["TUNEBOARD_VAR_DIR"]))
    os.environ["REDIS_URL"] = _redis.url
    os.environ["TUNEBOARD_TEST_EMBEDDED"] = "1"

from dashboard.settings.base import *  # noqa: F403
from dashboard.settings.base import DATABASES, VAR_DIR

if str(DATABASES["default"]["ENGINE"]).endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATASET_MAX_BYTES = 1024 * 1024
