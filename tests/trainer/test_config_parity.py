"""The trainer fills the same defaults as the server: it ships on its own, so it keeps a copy."""

from __future__ import annotations

from jobs.training_config import default_config
from trainer.config import DEFAULT_CONFIG


def test_the_trainers_defaults_match_the_servers() -> None:
    server = default_config()
    trainer = DEFAULT_CONFIG
    for section in ("data", "training", "predictions"):
        assert trainer[section] == server[section], section
    for key in ("device_map", "torch_dtype", "trust_remote_code"):
        assert trainer["model"][key] == server["model"][key], key
