"""How much does Tuneboard reporting slow a training step?

Trains the tiny model with `logging_steps=1` twice per round — once with `TuneboardCallback`
reporting to a real ingest server (in its own process, as in production), once without it —
alternating the order each round, and compares the mean wall time between step starts (which
includes logging and every callback). Target: under 1 % overhead.

    python -m benchmarks.trainer_overhead                 # CPU
    python -m benchmarks.trainer_overhead --device cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Time spent inside our callback's per-step hooks, over all "on" runs.
CALLBACK_SECONDS = [0.0]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--rounds", type=int, default=10, help="pairs of runs (on, off)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per run")
    parser.add_argument(
        "--torch-threads", type=int, default=1,
        help="CPU only: torch threads; 1 leaves a core to the reporter, as a GPU run would",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=10, help="first steps left out")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", type=Path, help="model dir (default: build the tiny one)")
    return parser.parse_args()


def start_ingest_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.trainer.ingest_server"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


class StepClock:
    """Times from one step start to the next: the whole step, logging and callbacks included."""

    def __new__(cls) -> Any:
        from transformers import TrainerCallback

        class _StepClock(TrainerCallback):
            def __init__(self) -> None:
                self.starts: list[float] = []

            def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.starts.append(time.perf_counter())

        return _StepClock()


def timed_callback(*args: Any) -> Any:
    """TuneboardCallback that also adds up the time spent inside its per-step hooks."""
    from trainer.callback import TuneboardCallback

    class Timed(TuneboardCallback):
        def on_step_begin(self, *a: Any, **k: Any) -> None:
            start = time.perf_counter()
            super().on_step_begin(*a, **k)
            CALLBACK_SECONDS[0] += time.perf_counter() - start

        def on_step_end(self, *a: Any, **k: Any) -> None:
            start = time.perf_counter()
            super().on_step_end(*a, **k)
            CALLBACK_SECONDS[0] += time.perf_counter() - start

        def on_log(self, *a: Any, **k: Any) -> None:
            start = time.perf_counter()
            super().on_log(*a, **k)
            CALLBACK_SECONDS[0] += time.perf_counter() - start

    return Timed(*args)


def config(model_dir: Path, steps: int, batch_size: int) -> dict[str, Any]:
    from trainer.config import resolve

    return resolve(
        {
            "model": {"name": str(model_dir)},
            "data": {"eval_split": 0, "max_seq_length": 64},
            "training": {"max_steps": steps, "logging_steps": 1, "batch_size": batch_size,
                         "lora_r": 8, "learning_rate": 0.01, "lora_dropout": 0.0},
            "predictions": {"enabled": False},
        }
    )  # fmt: skip


def rows(count: int) -> list[dict[str, str]]:
    # Enough rows that no epoch ends (and no epoch checkpoint is written) inside the run.
    return [{"instruction": f"count from {i % 7}", "input": "", "output": f"{i % 7} {i % 7 + 1}"}
            for i in range(count)]  # fmt: skip


def one_run(cfg: dict[str, Any], report_url: str | None, out: Path) -> list[float]:
    from trainer.client import IngestClient
    from trainer.data import prepare
    from trainer.reporting import Reporter, ReporterSettings
    from trainer.train import build_trainer, load_model, load_tokenizer

    tokenizer = load_tokenizer(cfg)
    data = prepare(rows(cfg["training"]["max_steps"] * cfg["training"]["batch_size"] * 2), cfg,
                   tokenizer)  # fmt: skip
    clock = StepClock()
    callbacks: list[Any] = [clock]
    reporter = None
    if report_url:
        client = IngestClient(report_url, "test-token")
        reporter = Reporter(client.post_events, out, ReporterSettings(report_interval_s=2.0))
        callbacks.append(timed_callback(reporter, cfg, tokenizer, [], 20.0, None))
    trainer = build_trainer(cfg, load_model(cfg), tokenizer, data, out, callbacks)
    trainer.train()
    if reporter is not None:
        assert reporter.close(timeout_s=30), "events were not all delivered"
    starts = clock.starts
    # Leave out warm-up and the last interval (our callback checkpoints the final step).
    return [b - a for a, b in itertools.pairwise(starts)][:-1]


def trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    ordered = sorted(values)
    k = int(len(ordered) * cut)
    return statistics.fmean(ordered[k : len(ordered) - k])


def main() -> None:
    args = parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    if args.device == "cpu":
        torch.set_num_threads(args.torch_threads)
    server, url = start_ingest_server()
    times: dict[str, list[float]] = {"on": [], "off": []}
    per_round: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            from trainer.tiny import build_tiny_model

            model_dir = args.model or build_tiny_model(Path(tmp) / "tiny")
            cfg = config(model_dir, args.steps, args.batch_size)
            for round_no in range(args.rounds):
                order = ["on", "off"] if round_no % 2 == 0 else ["off", "on"]
                means = {}
                for mode in order:
                    out = Path(tmp) / f"run-{round_no}-{mode}"
                    steps = one_run(cfg, url if mode == "on" else None, out)[args.warmup :]
                    times[mode].extend(steps)
                    means[mode] = statistics.fmean(steps)
                per_round.append(100 * (means["on"] - means["off"]) / means["off"])
                print_round(round_no, means, per_round[-1])
    finally:
        server.terminate()
        server.wait()
    report(args, torch, times, per_round)


def print_round(round_no: int, means: dict[str, float], overhead: float) -> None:
    on, off = means["on"] * 1e3, means["off"] * 1e3
    print(f"round {round_no + 1}: on {on:.3f} ms, off {off:.3f} ms ({overhead:+.2f} %)", flush=True)


def report(args: argparse.Namespace, torch: Any, times: dict[str, list[float]],
           per_round: list[float]) -> None:  # fmt: skip
    on, off = statistics.fmean(times["on"]), statistics.fmean(times["off"])
    on_t, off_t = trimmed_mean(times["on"]), trimmed_mean(times["off"])
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"\ndevice {device}, {args.rounds} rounds x {args.steps} steps, logging_steps=1, "
          f"batch {args.batch_size}, {len(times['on'])} timed steps per mode")  # fmt: skip
    print(f"mean step   reporting on {on * 1e3:.3f} ms   off {off * 1e3:.3f} ms   "
          f"overhead {100 * (on - off) / off:+.2f} %")  # fmt: skip
    print(f"trimmed 10% reporting on {on_t * 1e3:.3f} ms   off {off_t * 1e3:.3f} ms   "
          f"overhead {100 * (on_t - off_t) / off_t:+.2f} %")  # fmt: skip
    inside = CALLBACK_SECONDS[0] / (args.rounds * args.steps)
    print(f"inside TuneboardCallback: {inside * 1e6:.1f} us per step "
          f"({100 * inside / off:.2f} % of a step)")  # fmt: skip
    print(f"per-round overhead: median {statistics.median(per_round):+.2f} %, "
          f"range {min(per_round):+.2f} .. {max(per_round):+.2f} %")  # fmt: skip


if __name__ == "__main__":
    main()
