"""The fake RunPod server speaks the v2 spec: raw HTTP, no client of ours in between."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from providers.fakes.runpod import FakeRunPod
from tests.providers.helpers import RTX_4090, process_gone

Wait = Callable[..., Any]
Call = Callable[..., requests.Response]


@pytest.fixture
def call(fake: FakeRunPod) -> Iterator[Call]:
    with requests.Session() as session:

        def send(
            method: str, path: str, key: str | None = fake.api_key, **kw: Any
        ) -> requests.Response:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return session.request(method, fake.url + path, headers=headers, timeout=10, **kw)

        yield send


def create(call: Call, **body: Any) -> dict[str, Any]:
    payload = {"name": "tuneboard-x", "image": "img", "gpu": {"id": RTX_4090}, "args": "sleep 30"}
    response = call("POST", "/v2/pods", json={**payload, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_missing_bearer_token_is_a_401_problem(call: Call) -> None:
    response = call("GET", "/v2/pods", key=None)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "title": "Unauthorized",
        "status": 401,
        "detail": "missing bearer token",
    }


def test_a_read_only_key_may_read_but_not_create() -> None:
    with FakeRunPod(readonly_api_key="ro") as fake:
        headers = {"Authorization": "Bearer ro"}
        assert requests.get(f"{fake.url}/v2/pods", headers=headers, timeout=5).status_code == 200
        body = {"name": "x", "image": "i", "gpu": {"id": RTX_4090}}
        refused = requests.post(f"{fake.url}/v2/pods", json=body, headers=headers, timeout=5)
        assert refused.status_code == 403


def test_every_authenticated_answer_carries_rate_limit_headers(call: Call) -> None:
    for response in (call("GET", "/v2/pods"), call("GET", "/v2/pods/nope")):
        assert response.headers["RateLimit"].startswith('"minute";r=')
        assert response.headers["RateLimit-Policy"].startswith('"minute";q=')


def test_the_real_quota_is_enforced_with_retry_after() -> None:
    with FakeRunPod(quotas={"minute": 2, "hour": 100, "day": 1000}) as fake:
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        codes = [requests.get(f"{fake.url}/v2/pods", headers=headers, timeout=5) for _ in range(3)]

    assert [r.status_code for r in codes] == [200, 200, 429]
    assert int(codes[2].headers["Retry-After"]) >= 1
    assert codes[2].json()["detail"] == "rate limit exceeded for the minute window"


def test_a_new_pod_is_provisioning_with_no_runtime_and_is_billed(call: Call) -> None:
    pod = create(call, gpu={"id": RTX_4090, "count": 2})

    assert pod["status"] == "PROVISIONING"
    assert pod["actions"] == ["stop", "terminate"]
    assert pod["runtime"] is None and pod["startedAt"] is None
    assert pod["cost"] == pytest.approx(2 * 0.69)


def test_a_pod_becomes_running_with_runtime_and_uptime(call: Call, wait_until: Wait) -> None:
    pod_id = create(call)["id"]

    pod = wait_until(
        lambda: (p := call("GET", f"/v2/pods/{pod_id}").json())["status"] == "RUNNING" and p
    )

    assert pod["actions"] == ["stop", "restart", "terminate"]
    assert pod["runtime"]["gpus"] == [{"util": 90, "memoryUtil": 60}]
    assert pod["runtime"]["uptime"] >= 0 and pod["startedAt"]


def test_stop_exits_the_pod_kills_its_process_and_stops_the_cost(
    call: Call, fake: FakeRunPod, wait_until: Wait
) -> None:
    pod_id = create(call)["id"]
    wait_until(lambda: call("GET", f"/v2/pods/{pod_id}").json()["status"] == "RUNNING")
    pid = fake.pod(pod_id).process.pid  # type: ignore[union-attr]

    stopped = call("POST", f"/v2/pods/{pod_id}/action", json={"action": "stop"})

    assert stopped.status_code == 200
    assert stopped.json()["status"] == "EXITED" and stopped.json()["cost"] == 0.0
    assert stopped.json()["runtime"] is None
    assert process_gone(pid)


def test_an_action_not_allowed_in_the_current_status_is_a_409(call: Call) -> None:
    pod_id = create(call)["id"]

    response = call("POST", f"/v2/pods/{pod_id}/action", json={"action": "start"})

    assert response.status_code == 409
    assert response.json()["title"] == "Conflict"


def test_terminate_action_answers_204_and_the_pod_is_gone(call: Call) -> None:
    pod_id = create(call)["id"]

    assert (
        call("POST", f"/v2/pods/{pod_id}/action", json={"action": "terminate"}).status_code == 204
    )
    assert call("GET", f"/v2/pods/{pod_id}").status_code == 404
    assert call("DELETE", f"/v2/pods/{pod_id}").status_code == 404


def test_a_body_breaking_the_contract_is_a_422_listing_each_violation(call: Call) -> None:
    response = call("POST", "/v2/pods", json={"name": "x", "gpu": {"id": RTX_4090}, "bogus": 1})

    assert response.status_code == 422
    assert "$: additional properties 'bogus' not allowed" in response.json()["errors"]
    assert any("image" in e for e in response.json()["errors"])


def test_both_mount_kinds_at_once_is_a_400(call: Call) -> None:
    mounts = {
        "persistent": {"size": 20, "path": "/w"},
        "network": [{"volumeId": "v", "path": "/n"}],
    }

    response = call(
        "POST",
        "/v2/pods",
        json={"name": "x", "image": "i", "gpu": {"id": RTX_4090}, "mounts": mounts},
    )

    assert response.status_code == 400


def test_a_wrong_method_is_a_405_with_allow(call: Call) -> None:
    response = call("PUT", "/v2/pods")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


def test_the_catalog_has_prices_and_availability_when_asked(call: Call, fake: FakeRunPod) -> None:
    fake.set_no_capacity(RTX_4090)

    plain = call("GET", "/v2/catalog/gpus").json()["gpus"]
    stocked = call("GET", "/v2/catalog/gpus", params={"include": "AVAILABILITY", "product": "POD"})

    h100 = next(g for g in plain if g["id"] == "NVIDIA H100 80GB HBM3")
    assert h100["price"] == {"secure": 3.99, "community": 2.69} and "availability" not in h100
    availability = {g["id"]: g["availability"] for g in stocked.json()["gpus"]}
    assert availability[RTX_4090] == "NONE" and availability["NVIDIA L40S"] == "HIGH"
    assert call("GET", "/v2/catalog/gpus", params={"include": "AVAILABILITY"}).status_code == 400


def test_billing_adds_up_what_a_pod_cost_even_after_it_is_deleted(
    call: Call, wait_until: Wait
) -> None:
    pod_id = create(call)["id"]
    wait_until(lambda: call("GET", f"/v2/pods/{pod_id}").json()["status"] == "RUNNING")
    call("DELETE", f"/v2/pods/{pod_id}")

    billing = call("GET", "/v2/billing/pods", params={"podId": pod_id, "bucketSize": "hour"}).json()

    assert billing["metadata"]["uniquePodCount"] == 1
    total = billing["metadata"]["totals"]["totalAmount"]
    assert total > 0 and total == pytest.approx(sum(r["totalAmount"] for r in billing["records"]))
    assert billing["records"][0]["podId"] == pod_id


def test_billing_refuses_last_n_with_a_time_window(call: Call) -> None:
    response = call(
        "GET", "/v2/billing/pods", params={"lastN": 2, "startTime": "2026-01-01T00:00:00Z"}
    )

    assert response.status_code == 400


def test_the_logs_endpoint_streams_the_container_output(call: Call, wait_until: Wait) -> None:
    pod_id = create(call, args="echo hello from the pod")["id"]

    events = wait_until(lambda: "hello" in (t := call("GET", f"/v2/pods/{pod_id}/logs").text) and t)

    assert 'data: {"source": "container", "line": "hello from the pod"' in events


def test_a_command_override_runs_instead_of_the_image_command(wait_until: Wait) -> None:
    with FakeRunPod(provision_s=0, start_s=0, command_override="echo overridden; echo $X") as fake:
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        body = {
            "name": "p",
            "image": "i",
            "gpu": {"id": RTX_4090},
            "args": "false",
            "env": {"X": "42"},
        }
        pod_id = requests.post(f"{fake.url}/v2/pods", json=body, headers=headers, timeout=5).json()[
            "id"
        ]
        url = f"{fake.url}/v2/pods/{pod_id}"

        wait_until(
            lambda: requests.get(url, headers=headers, timeout=5).json()["status"] == "EXITED"
        )

        assert fake.pod(pod_id).log_path.read_text() == "overridden\n42\n"
