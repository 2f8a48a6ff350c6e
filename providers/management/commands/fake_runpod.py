"""``python manage.py fake_runpod``: a local fake RunPod, to try the RunPod path with no account."""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from providers.fakes.runpod import FakeRunPod


class Command(BaseCommand):
    help = (
        "Run a fake RunPod REST v2 server on 127.0.0.1 until Ctrl-C. Its pods run their start "
        "command as local processes. Point the RunPod provider's base URL at it and use its key."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
        parser.add_argument("--api-key", default=None, help="default: a fresh random key")
        parser.add_argument("--provision-s", type=float, default=2.0, help="seconds PROVISIONING")
        parser.add_argument("--start-s", type=float, default=2.0, help="seconds STARTING")
        parser.add_argument(
            "--command",
            default=None,
            help="run this (bash -c) in every pod instead of its args, e.g. 'python -m trainer'",
        )
        parser.add_argument("--workdir", default=None, help="pods' work dirs (default: a temp dir)")

    def handle(self, *args: Any, **options: Any) -> None:
        fake = FakeRunPod(
            port=options["port"],
            api_key=options["api_key"],
            provision_s=options["provision_s"],
            start_s=options["start_s"],
            command_override=options["command"],
            workdir=options["workdir"],
        ).start()
        self.stdout.write(f"Fake RunPod REST v2 at {fake.url}")
        self.stdout.write(f"API key: {fake.api_key}")
        self.stdout.write(
            f"Point the server at it (RUNPOD_BASE_URL={fake.url}) and save the key above as "
            "the RunPod key."
        )
        self.stdout.write(f"Pods run in {fake.workdir}. Ctrl-C stops the server and its pods.")
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan pods
            fake.stop()
            self.stdout.write("Stopped.")
