"""``manage.py embedded``: the whole of Tuneboard on this machine, stopped by Ctrl-C.

SQLite and a private Redis in var/, the ASGI server, a Celery worker and Celery beat as
child processes. The first run creates an account and prints how to sign in.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.embedded import spawn, stack_commands, start_private_redis, supervise


class Command(BaseCommand):
    help = "Run Tuneboard embedded: web, worker, beat and a private Redis. Ctrl-C stops all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        if not settings.EMBEDDED:
            raise CommandError(
                "DATABASE_URL or REDIS_URL is set: run web, worker and beat separately "
                "(see docker-compose.yml), or unset them for the embedded mode"
            )
        call_command("migrate", interactive=False, verbosity=0)
        first_password = self._first_account()
        redis = start_private_redis(settings.VAR_DIR)
        env = {
            **os.environ,
            "REDIS_URL": redis.url,
            "TUNEBOARD_VAR_DIR": str(settings.VAR_DIR),
            "TUNEBOARD_PUBLIC_URL": f"http://{host}:{port}",
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "dashboard.settings.base"
            ),
        }
        children = [
            spawn(name, argv, env) for name, argv in stack_commands(host, port, settings.VAR_DIR)
        ]
        self.stdout.write(self.style.SUCCESS(f"\nTuneboard is running at http://{host}:{port}/"))
        if first_password:
            self.stdout.write(
                f"First run: sign in as 'admin' with password {first_password} "
                "(change it in the admin at /admin/password_change/)."
            )
        self.stdout.write("Press Ctrl-C to stop.\n")
        try:
            code = supervise(children)
        finally:
            redis.stop()
        if code:
            raise SystemExit(code)

    def _first_account(self) -> str | None:
        user_model = get_user_model()
        if user_model.objects.exists():
            return None
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "", password)
        return password
