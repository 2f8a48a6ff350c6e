"""A real Chromium (Debian's, never a downloaded one) against the live stack."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from jobs.models import Dataset, JobStatus, TrainingConfig, TrainingJob, hash_token

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "e2e-pass-4821"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "Debian's Chromium is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls
    # (fixtures, database flushes) are still plain synchronous code, so Django may allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def sign_in(page: Any, url: str, user: User) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def make_user(name: str) -> User:
    return User.objects.create_user(name, password=PASSWORD)


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def running_job_without_a_pod(config: TrainingConfig, dataset: Dataset) -> tuple[TrainingJob, str]:
    """A running job no worker will touch (a pod would report on its own): the test reports."""
    token = secrets.token_urlsafe(24)
    job = TrainingJob.objects.create(
        owner=config.owner,
        config=config,
        config_snapshot=config.config,
        dataset=dataset,
        name=config.name,
        provider="local",
        status=JobStatus.RUNNING,
        budget=Decimal("5"),
        ingest_token_hash=hash_token(token),
    )
    return job, token
