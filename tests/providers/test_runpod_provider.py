"""The RunPod client against the fake RunPod v2 server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from providers.base import (
    LaunchSpec,
    NoBalance,
    NoCapacity,
    NotFound,
    Provider,
    RateLimited,
    Unauthorized,
)
from providers.fakes.runpod import FakeRunPod
from providers.runpod import RunPodProvider, Unavailable, container_args
from tests.providers.helpers import A6000, RTX_4090, process_gone

Spec = Callable[..., LaunchSpec]
Wait = Callable[..., Any]


def test_it_implements_the_provider_interface(runpod: RunPodProvider) -> None:
    assert isinstance(runpod, Provider)


def test_a_pod_goes_from_pending_to_running_and_is_gone_after_terminate(
    runpod: RunPodProvider, make_spec: Spec, wait_until: Wait
) -> None:
    # given
    launched = runpod.launch(make_spec())
    assert runpod.status(launched.ref).state == "pending"

    # when
    running = wait_until(lambda: (s := runpod.status(launched.ref)).state == "running" and s)

    # then
    assert running.provider_state == "RUNNING"
    assert running.price_per_hour == pytest.approx(0.69)  # RTX 4090 Secure, README §5.1
    assert running.gpu_util == 90 and running.gpu_mem_util == 60
    assert running.uptime_s is not None and running.billed_cost is not None
    runpod.terminate(launched.ref)
    with pytest.raises(NotFound):
        runpod.status(launched.ref)


def test_launching_the_same_job_twice_makes_one_pod(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec
) -> None:
    spec = make_spec()

    first, second = runpod.launch(spec), runpod.launch(spec)

    assert first.ref == second.ref
    assert len(fake.created) == 1


@pytest.mark.parametrize("mode", ["500", "drop"])
def test_a_lost_create_response_still_leaves_exactly_one_pod(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec, mode: str
) -> None:
    # given: RunPod creates the pod, then answers 500 or drops the connection (README §0.4)
    fake.lose_next_create(mode=mode)

    # when
    launched = runpod.launch(make_spec())

    # then
    assert fake.created == [launched.ref]
    assert fake.count("POST", "/v2/pods") == 1


def test_a_create_answer_past_the_timeout_still_leaves_exactly_one_pod(
    fake: FakeRunPod, make_spec: Spec
) -> None:
    runpod = RunPodProvider(fake.api_key, base_url=fake.url, timeout=(2.0, 0.3), backoff_s=0.01)
    runpod.list_ours()  # warm the connection, so only the create is slow
    fake.slow_answers(1, seconds=1.0)

    launched = runpod.launch(make_spec())

    assert fake.created == [launched.ref]


def test_no_capacity_on_the_first_gpu_type_falls_through_to_the_next(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec
) -> None:
    fake.set_no_capacity(RTX_4090)

    launched = runpod.launch(make_spec(gpu_types=[RTX_4090, A6000]))

    assert launched.gpu_type == A6000
    assert [r.status for r in fake.requests if r.method == "POST"] == [400, 201]


def test_no_capacity_anywhere_is_a_retryable_no_capacity_error(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec
) -> None:
    fake.set_no_capacity(RTX_4090, A6000)

    with pytest.raises(NoCapacity) as error:
        runpod.launch(make_spec(gpu_types=[RTX_4090, A6000]))

    assert not error.value.permanent
    assert RTX_4090 in error.value.message and A6000 in error.value.message
    assert fake.created == []


def test_no_balance_stops_at_once_with_a_clear_message(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec
) -> None:
    fake.set_no_balance()

    with pytest.raises(NoBalance) as error:
        runpod.launch(make_spec(gpu_types=[RTX_4090, A6000]))

    assert error.value.permanent
    assert "balance" in error.value.message and "add credit" in error.value.message
    assert fake.count("POST", "/v2/pods") == 1  # no point trying the other GPU type


def test_a_short_rate_limit_storm_is_waited_out_per_retry_after(
    runpod: RunPodProvider, fake: FakeRunPod
) -> None:
    fake.rate_limit_storm(2, retry_after=1)
    started = time.monotonic()

    assert runpod.list_ours() == []

    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 honoured
    assert fake.count("GET", "/v2/pods") == 3


def test_a_rate_limit_storm_longer_than_the_retry_cap_fails_clearly(
    fake: FakeRunPod,
) -> None:
    runpod = RunPodProvider(fake.api_key, base_url=fake.url, max_retries=1, backoff_s=0.01)
    fake.rate_limit_storm(10, retry_after=1)

    with pytest.raises(RateLimited) as error:
        runpod.list_ours()

    assert error.value.retry_after == 1
    assert "gave up after 2 attempts" in error.value.message
    assert not error.value.permanent


def test_a_retry_after_beyond_the_wait_cap_is_handed_to_the_caller_at_once(
    runpod: RunPodProvider, fake: FakeRunPod
) -> None:
    fake.rate_limit_storm(1, retry_after=120)

    with pytest.raises(RateLimited) as error:
        runpod.list_ours()

    assert error.value.retry_after == 120
    assert fake.count("GET", "/v2/pods") == 1


def test_a_short_server_error_storm_is_retried_with_backoff(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec
) -> None:
    fake.server_error_storm(3)

    launched = runpod.launch(make_spec())

    assert fake.created == [launched.ref]


def test_a_server_error_storm_longer_than_the_retries_is_a_transient_error(
    runpod: RunPodProvider, fake: FakeRunPod
) -> None:
    fake.server_error_storm(50)

    with pytest.raises(Unavailable) as error:
        runpod.list_ours()

    assert not error.value.permanent
    assert "500" in error.value.message


def test_terminating_twice_is_fine(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec
) -> None:
    launched = runpod.launch(make_spec())

    runpod.terminate(launched.ref)
    runpod.terminate(launched.ref)

    assert fake.pods == {}


def test_list_ours_lists_only_tuneboard_pods(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec
) -> None:
    # given: a pod someone made by hand in the same account
    requests.post(
        f"{fake.url}/v2/pods",
        json={"name": "my-notebook", "image": "img", "gpu": {"id": RTX_4090}},
        headers={"Authorization": f"Bearer {fake.api_key}"},
        timeout=5,
    ).raise_for_status()
    ours = runpod.launch(make_spec())

    listed = runpod.list_ours()

    assert [p.ref for p in listed] == [ours.ref]
    assert listed[0].billed_cost is not None


def test_a_bad_api_key_is_a_clear_permanent_error(fake: FakeRunPod, make_spec: Spec) -> None:
    runpod = RunPodProvider("not-the-key", base_url=fake.url)

    with pytest.raises(Unauthorized) as error:
        runpod.launch(make_spec())

    assert error.value.permanent
    assert "API key" in error.value.message and "401" in error.value.message


def test_a_pod_really_runs_its_command_with_exactly_the_env_it_was_given(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec, wait_until: Wait
) -> None:
    # given
    spec = make_spec()

    # when
    launched = runpod.launch(spec)

    # then: the process saw the spec's env and nothing secret of ours
    env_file = fake.workdir / launched.ref / "env.json"
    env = json.loads(wait_until(lambda: env_file.exists() and env_file.read_text()))
    assert {k: env[k] for k in spec.env} == spec.env
    assert not [k for k in env if "RUNPOD" in k or "API_KEY" in k]
    assert fake.api_key not in json.dumps(env)
    (create,) = [r for r in fake.requests if r.method == "POST" and r.path == "/v2/pods"]
    assert create.body["env"] == spec.env


def test_terminate_kills_the_pods_processes(
    runpod: RunPodProvider, fake: FakeRunPod, make_spec: Spec, wait_until: Wait
) -> None:
    launched = runpod.launch(make_spec())
    child_pid_file = fake.workdir / launched.ref / "child.pid"
    child_pid = int(wait_until(lambda: child_pid_file.exists() and child_pid_file.read_text()))
    leader_pid = fake.pod(launched.ref).process.pid  # type: ignore[union-attr]

    runpod.terminate(launched.ref)

    assert process_gone(leader_pid) and process_gone(child_pid)


def test_a_pod_whose_command_succeeds_reports_exited(
    runpod: RunPodProvider, make_spec: Spec, wait_until: Wait
) -> None:
    launched = runpod.launch(make_spec(start_command="echo done"))

    exited = wait_until(lambda: (s := runpod.status(launched.ref)).state == "exited" and s)

    assert exited.price_per_hour == 0.0  # spec: cost is 0.0 when EXITED
    assert exited.uptime_s is None  # runtime is null unless RUNNING


def test_a_pod_whose_command_fails_reports_error(
    runpod: RunPodProvider, make_spec: Spec, wait_until: Wait
) -> None:
    launched = runpod.launch(make_spec(start_command="exit 3"))

    wait_until(lambda: runpod.status(launched.ref).state == "error")


def test_a_restarted_container_does_not_run_the_job_a_second_time(tmp_path: Path) -> None:
    # given: the pod's args, with the persistent volume at tmp_path
    runs = tmp_path / "runs"
    args = shlex.split(container_args(f"echo run >> {runs}", "job-1", volume_path=str(tmp_path)))
    subprocess.run(args, check=True, timeout=10)

    # when: the container starts again (host restart, or a `start` action)
    second = subprocess.Popen(args, stderr=subprocess.PIPE, start_new_session=True)
    with pytest.raises(subprocess.TimeoutExpired):
        second.wait(timeout=0.5)  # it idles until terminated instead of training again
    os.killpg(second.pid, signal.SIGKILL)
    _, stderr = second.communicate()

    # then
    assert runs.read_text() == "run\n"
    assert b"already ran its job" in stderr
