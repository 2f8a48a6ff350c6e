"""LocalProvider: pods are real process groups on this machine, tracked across restarts."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from providers.base import LaunchSpec, NotFound, Provider
from providers.local import INHERITED_ENV, LocalProvider
from tests.providers.helpers import process_gone

Spec = Callable[..., LaunchSpec]
Wait = Callable[..., Any]


def pod_file(local: LocalProvider, spec: LaunchSpec, name: str) -> Path:
    return local.state_dir / spec.name / name


def test_it_implements_the_provider_interface(local: LocalProvider) -> None:
    assert isinstance(local, Provider)
    assert local.offers()[0].provider == "local"


def test_a_pod_reports_running_then_exited(
    local: LocalProvider, make_spec: Spec, wait_until: Wait
) -> None:
    launched = local.launch(make_spec(start_command="sleep 0.5"))

    assert local.status(launched.ref).state == "running"
    exited = wait_until(lambda: (s := local.status(launched.ref)).state == "exited" and s)
    assert exited.exit_code == 0 and exited.uptime_s is not None and exited.uptime_s >= 0.4


def test_launching_the_same_job_twice_starts_one_process(
    local: LocalProvider, make_spec: Spec
) -> None:
    spec = make_spec(start_command="echo once >> runs; sleep 30")

    first, second = local.launch(spec), local.launch(spec)

    assert first == second
    assert len(local.list_ours()) == 1
    local.terminate(first.ref)


def test_the_pod_gets_exactly_its_env_and_nothing_secret(
    local: LocalProvider, make_spec: Spec, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a provider key in the server's own environment
    monkeypatch.setenv("RUNPOD_API_KEY", "server-secret")
    spec = make_spec()

    # when
    local.launch(spec)

    # then
    env_file = pod_file(local, spec, "env.json")
    env = json.loads(wait_until(lambda: env_file.exists() and env_file.read_text()))
    assert {k: env[k] for k in spec.env} == spec.env
    extra = set(env) - set(spec.env) - set(INHERITED_ENV)
    assert extra <= {"PWD", "SHLVL", "_", "OLDPWD"}  # what bash itself sets
    assert "RUNPOD_API_KEY" not in env
    local.terminate(spec.name)


def test_terminate_kills_the_whole_process_group(
    local: LocalProvider, make_spec: Spec, wait_until: Wait
) -> None:
    spec = make_spec()
    launched = local.launch(spec)
    child_file = pod_file(local, spec, "child.pid")
    child_pid = int(wait_until(lambda: child_file.exists() and child_file.read_text()))

    local.terminate(launched.ref)

    assert process_gone(child_pid)
    with pytest.raises(NotFound):
        local.status(launched.ref)
    local.terminate(launched.ref)  # twice is fine


def test_a_pod_that_ignores_sigterm_is_killed_after_the_grace(
    tmp_path: Path, make_spec: Spec, wait_until: Wait
) -> None:
    local = LocalProvider(tmp_path, grace_s=0.3)
    spec = make_spec(start_command="trap '' TERM; echo $$ > leader.pid; sleep 30")
    local.launch(spec)
    leader_file = pod_file(local, spec, "leader.pid")
    leader = int(wait_until(lambda: leader_file.exists() and leader_file.read_text()))

    local.terminate(spec.name)

    assert process_gone(leader)


def test_status_survives_a_server_restart(
    local: LocalProvider, make_spec: Spec, wait_until: Wait
) -> None:
    # given: a running pod and one that finished, started by a provider that then goes away
    running = local.launch(make_spec(start_command="sleep 30"))
    done = local.launch(make_spec(start_command="exit 0"))
    wait_until(lambda: local.status(done.ref).state == "exited")

    # when: the server restarts
    restarted = LocalProvider(local.state_dir, grace_s=2.0)

    # then
    assert restarted.status(running.ref).state == "running"
    assert restarted.status(done.ref).state == "exited"
    assert sorted(s.ref for s in restarted.list_ours()) == sorted([running.ref, done.ref])
    restarted.terminate(running.ref)
    assert restarted.status(done.ref).state == "exited"


def test_a_killed_process_is_an_error(
    local: LocalProvider, make_spec: Spec, wait_until: Wait
) -> None:
    spec = make_spec(start_command="sleep 30")
    local.launch(spec)
    record = json.loads((local.state_dir / f"{spec.name}.json").read_text())

    os.killpg(record["pgid"], signal.SIGKILL)

    failed = wait_until(lambda: (s := local.status(spec.name)).state == "error" and s)
    assert "killed" in failed.message


def test_a_failing_command_is_an_error_with_its_last_words(
    local: LocalProvider, make_spec: Spec, wait_until: Wait
) -> None:
    spec = make_spec(start_command="echo 'CUDA out of memory' >&2; exit 3")
    local.launch(spec)

    failed = wait_until(lambda: (s := local.status(spec.name)).state == "error" and s)

    assert failed.exit_code == 3
    assert "exited with code 3" in failed.message and "CUDA out of memory" in failed.message


def test_a_reused_pid_is_not_mistaken_for_the_pod(local: LocalProvider, make_spec: Spec) -> None:
    # given: the record's pid now belongs to another process (its start time differs)
    spec = make_spec(start_command="sleep 30")
    local.launch(spec)
    record_path = local.state_dir / f"{spec.name}.json"
    record = json.loads(record_path.read_text())
    record["start_ticks"] -= 1
    record_path.write_text(json.dumps(record))
    restarted = LocalProvider(local.state_dir, grace_s=2.0)

    # when / then: not ours, so not running, and terminate leaves the stranger alone
    assert restarted.status(spec.name).state == "error"
    restarted.terminate(spec.name)
    assert not process_gone(record["pid"])
    os.killpg(record["pgid"], signal.SIGKILL)
