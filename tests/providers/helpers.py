"""Constants and checks shared by the provider tests."""

from __future__ import annotations

from pathlib import Path

RTX_4090 = "NVIDIA GeForce RTX 4090"
A6000 = "NVIDIA RTX A6000"
# A pod command that proves it ran with the env it was given, then keeps running with a child
# process (whose pid it writes down, to check that terminate kills the whole group).
WRITE_ENV_AND_WAIT = (
    "python -c \"import json, os; json.dump(dict(os.environ), open('env.json', 'w'))\"; "
    "echo started; sleep 60 & echo $! > child.pid; wait"
)


def process_gone(pid: int) -> bool:
    """True once ``pid`` is dead (a zombie counts as dead: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"
