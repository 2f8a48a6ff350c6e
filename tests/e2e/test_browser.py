"""The dashboard in a real browser against real web, worker and beat processes."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from jobs import services
from jobs.models import JobStatus, TrainingJob
from tests.conftest import INSTRUCTION_ROWS, jsonl
from tests.e2e.conftest import make_user, running_job_without_a_pod, screenshot, sign_in
from tests.stack import tiny_training_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

XSS = "<img src=x onerror=alert(1)>"


def post_events(url: str, job: TrainingJob, token: str, events: list[dict[str, Any]]) -> None:
    """What a trainer does: one batch to the ingest API."""
    response = requests.post(
        f"{url}/api/ingest/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}", "X-Tuneboard-Job": str(job.id)},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def loss_events(first_seq: int, steps: range) -> list[dict[str, Any]]:
    return [
        {"seq": first_seq + i, "type": "metric", "ts": "2026-11-22T10:00:00Z",
         "data": {"step": step, "total_steps": 100, "values": {"loss": 3.0 - step / 50}}}
        for i, step in enumerate(steps)
    ]  # fmt: skip


def dataset_file(tmp_path: Path, rows: list[Any], name: str = "arith.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(jsonl(rows))
    return path


def test_a_newcomer_uploads_configures_launches_and_watches_a_run(
    live_stack: Any, page: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    # given a new user on the new fine-tune page
    user = make_user("newcomer")
    sign_in(page, live_stack.url, user)
    screenshot(page, "runs-empty")
    page.click("text=+ New fine-tune")
    # when they upload a dataset, they see its format, rows and preview
    page.set_input_files("#dataset-file", str(dataset_file(tmp_path, INSTRUCTION_ROWS * 3)))
    page.wait_for_selector("#dataset-summary:not([hidden])")
    assert page.text_content("#ds-format") == "instruction"
    assert page.text_content("#ds-rows") == "60"
    assert "Add 0 and 0" in page.text_content("#ds-preview")
    # and fill the form for the tiny model
    values = {
        "#f-name": "first tiny run", "#f-model-name": str(tiny_model_dir),
        "#f-training-max_steps": "40", "#f-training-batch_size": "4",
        "#f-training-learning_rate": "0.005", "#f-training-logging_steps": "1",
        "#f-training-lora_r": "8", "#f-training-lora_alpha": "16",
        "#f-data-eval_split": "0.2", "#f-data-max_seq_length": "64",
        "#f-predictions-sample_count": "2", "#f-predictions-step_interval": "10",
        "#f-predictions-max_new_tokens": "8", "#budget": "1",
    }  # fmt: skip
    for selector, value in values.items():
        page.fill(selector, value)
    page.click("summary:has-text('Model loading')")
    page.select_option("#f-model-torch_dtype", "float32")
    page.select_option("#f-predictions-sample_frequency", "steps")
    # they see the estimate table and pick this machine
    page.wait_for_selector("#estimate-table tr[data-provider=local]")
    page.click("#estimate-table tr[data-provider=local]")
    screenshot(page, "new-fine-tune")
    page.click("#launch")
    # then the run page opens and the loss chart gains points while the run is going
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}/$"), timeout=30_000)
    first = page.wait_for_function(
        "() => window.tuneboardRun?.state.status === 'running' && window.tuneboardRun.steps('loss').length > 0"
        " && window.tuneboardRun.chartSteps('loss').length",
        timeout=180_000,
    ).json_value()
    page.wait_for_function(
        f"() => window.tuneboardRun.chartSteps('loss').length > {first}", timeout=120_000
    )
    page.wait_for_function(
        "() => window.tuneboardRun.state.status === 'succeeded'", timeout=240_000
    )
    # and predictions with scores are in the table
    page.wait_for_selector("#prediction-body tr")
    assert page.text_content("#prediction-body tr td[data-col=bleu]").strip() != "—"
    screenshot(page, "run-finished")


def test_the_stop_button_stops_a_running_run(
    live_stack: Any, page: Any, tiny_model_dir: Path, make_dataset: Any
) -> None:
    user = make_user("stopper")
    config = tiny_training_config(user, make_dataset(user=user), tiny_model_dir, max_steps=5000)
    job, _ = services.launch_job(
        user, config, services.LaunchRequest(provider="local", gpu_types=[], budget=Decimal(5))
    )
    sign_in(page, live_stack.url, user)
    page.goto(f"{live_stack.url}/runs/{job.id}/")
    page.wait_for_function("() => window.tuneboardRun.state.status === 'running'", timeout=180_000)
    page.click("#stop-button")
    page.click("#stop-confirm")
    page.wait_for_function(
        "() => ['stopping', 'stopped'].includes(window.tuneboardRun.state.status)", timeout=30_000
    )
    live_stack.wait_for(
        lambda: TrainingJob.objects.get(id=job.id).status == JobStatus.STOPPED, 120, "the stop"
    )
    page.wait_for_function("() => window.tuneboardRun.state.status === 'stopped'", timeout=30_000)
    assert page.is_hidden("#stop-form")


def test_a_budget_stopped_run_shows_its_banner_live(
    live_stack: Any, page: Any, make_config: Any, make_dataset: Any
) -> None:
    user = make_user("spender")
    dataset = make_dataset(user=user)
    job, _ = running_job_without_a_pod(make_config(dataset=dataset, user=user), dataset)
    sign_in(page, live_stack.url, user)
    page.goto(f"{live_stack.url}/runs/{job.id}/")
    assert page.is_hidden("#budget-banner")
    page.wait_for_function("() => window.tuneboardRun.state.connects === 1")
    services.finish_job(job.id, JobStatus.BUDGET_EXCEEDED, "budget spent", stop_reason="budget")
    page.wait_for_selector("#budget-banner", state="visible")
    page.reload()
    assert page.is_visible("#budget-banner")
    screenshot(page, "run-budget-exceeded")


def test_a_bad_dataset_shows_each_line_error(live_stack: Any, page: Any, tmp_path: Path) -> None:
    user = make_user("careless")
    sign_in(page, live_stack.url, user)
    page.goto(f"{live_stack.url}/runs/new/")
    path = tmp_path / "bad.jsonl"
    good = json.dumps(INSTRUCTION_ROWS[0])
    path.write_text(f"{good}\n{good}\n{{not json\n{good}\n" + json.dumps({"instruction": 3}) + "\n")
    page.set_input_files("#dataset-file", str(path))
    page.wait_for_selector("#dataset-summary:not([hidden])")
    errors = page.locator("#ds-errors li").all_text_contents()
    assert any(e.startswith("line 3") for e in errors), errors
    assert any(e.startswith("line 5") for e in errors), errors
    screenshot(page, "bad-dataset")


def test_an_outsider_cannot_open_a_run_page(
    live_stack: Any, page: Any, make_config: Any, make_dataset: Any
) -> None:
    owner = make_user("keeper")
    dataset = make_dataset(user=owner)
    job, _ = running_job_without_a_pod(make_config(dataset=dataset, user=owner), dataset)
    sign_in(page, live_stack.url, make_user("snoop"))
    response = page.goto(f"{live_stack.url}/runs/{job.id}/")
    assert response.status == 404
    assert "keeper" not in page.content()


def test_a_prediction_with_markup_shows_as_text_and_runs_nothing(
    live_stack: Any, page: Any, make_config: Any, make_dataset: Any
) -> None:
    user = make_user("reviewer")
    dataset = make_dataset(user=user)
    job, token = running_job_without_a_pod(make_config(dataset=dataset, user=user), dataset)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    prediction = {"step": 1, "epoch": 0.1, "sample_id": "s0", "prompt": XSS, "generated": XSS,
                  "expected": XSS, "scores": {"bleu": 0.1, "rouge1": 0.2, "rouge2": 0.0, "rougeL": 0.2}}  # fmt: skip
    post_events(live_stack.url, job, token, [{"seq": 1, "type": "prediction", "ts": "2026-11-22T10:00:00Z", "data": prediction}])  # fmt: skip
    sign_in(page, live_stack.url, user)
    page.goto(f"{live_stack.url}/runs/{job.id}/")
    page.wait_for_function("() => window.tuneboardRun.state.connects === 1")
    # and one more arrives live, through the page's script
    live = {**prediction, "step": 2}
    post_events(live_stack.url, job, token, [{"seq": 2, "type": "prediction", "ts": "2026-11-22T10:00:01Z", "data": live}])  # fmt: skip
    page.wait_for_selector("#prediction-body tr[data-step='2']")
    cells = page.locator("#prediction-body td[data-col=generated]").all_text_contents()
    assert cells == [XSS, XSS]
    assert page.locator("#prediction-body img").count() == 0
    page.select_option("#follow-sample", "s0")
    page.wait_for_selector("#follow-list li .diff")
    assert page.locator("#follow-list img").count() == 0
    page.wait_for_timeout(500)
    assert dialogs == []


def test_a_dropped_socket_leaves_no_gap_in_the_chart(
    live_stack: Any, page: Any, make_config: Any, make_dataset: Any
) -> None:
    user = make_user("watcher")
    dataset = make_dataset(user=user)
    job, token = running_job_without_a_pod(make_config(dataset=dataset, user=user), dataset)
    post_events(live_stack.url, job, token, loss_events(1, range(1, 11)))
    sign_in(page, live_stack.url, user)
    page.goto(f"{live_stack.url}/runs/{job.id}/")
    page.wait_for_function("() => window.tuneboardRun.chartSteps('loss').length === 10")
    # live points arrive over the socket
    post_events(live_stack.url, job, token, loss_events(11, range(11, 21)))
    page.wait_for_function("() => window.tuneboardRun.chartSteps('loss').length === 20")
    # when the socket drops, points posted meanwhile are missed by it
    page.evaluate("window.tuneboardRun.closeSocket()")
    post_events(live_stack.url, job, token, loss_events(21, range(21, 31)))
    # then the page reconnects, backfills from its last seq and keeps going live
    page.wait_for_function("() => window.tuneboardRun.state.connects === 2", timeout=30_000)
    post_events(live_stack.url, job, token, loss_events(31, range(31, 41)))
    page.wait_for_function("() => window.tuneboardRun.chartSteps('loss').length === 40")
    assert page.evaluate("window.tuneboardRun.chartSteps('loss')") == list(range(1, 41))
    # drawnSeq moves when the next animation frame draws; under load that frame can come late
    page.wait_for_function("() => window.tuneboardRun.state.drawnSeq === 40")
    screenshot(page, "run-live")
