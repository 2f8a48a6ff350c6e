"""The live group: a websocket receives a committed ingest batch through the real channel layer."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from dashboard.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def session_headers(user: User) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://localhost")]


def connect(headers: list[tuple[bytes, bytes]], job_id: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/jobs/{job_id}/", headers=headers)


def post_batch(token: str) -> None:
    events = [
        {
            "seq": i,
            "type": "metric",
            "ts": timezone.now().isoformat(),
            "data": {"step": i, "values": {"loss": 2.0 / i}},
        }
        for i in (1, 2)
    ]
    response = Client().post(
        "/api/ingest/v1/events", json.dumps({"events": events}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip
    assert response.status_code == 200


def test_the_owner_receives_a_published_batch(owner: User, make_job) -> None:
    job, token = make_job()
    headers = session_headers(owner)

    async def scenario() -> dict:
        socket = connect(headers, str(job.id))
        connected, _ = await socket.connect()
        assert connected
        await sync_to_async(post_batch)(token)
        message = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["type"] == "job.update"
    assert (message["first_seq"], message["seq"]) == (1, 2)
    assert message["metrics"]["loss"] == [[1, 2], [2.0, 1.0]]


def test_an_outsider_cannot_subscribe(outsider: User, make_job) -> None:
    job, _ = make_job()
    headers = session_headers(outsider)

    async def scenario() -> bool:
        socket = connect(headers, str(job.id))
        connected, _ = await socket.connect()
        await socket.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def test_an_anonymous_visitor_cannot_subscribe(make_job) -> None:
    job, _ = make_job()

    async def scenario() -> bool:
        socket = WebsocketCommunicator(
            application, f"/ws/jobs/{job.id}/", headers=[(b"origin", b"http://localhost")]
        )
        connected, _ = await socket.connect()
        await socket.disconnect()
        return connected

    assert async_to_sync(scenario)() is False
