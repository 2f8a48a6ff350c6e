"""``local``: run a pod's start command as a process group on this machine (the embedded default).

Each pod is a record ``<state_dir>/<name>.json`` plus a folder ``<state_dir>/<name>/`` holding the
log and, once the command ends, its exit code. The records make ``status`` and ``list_ours`` work
after a server restart, when the process is no longer our child. The process helpers below are
also what the fake RunPod server uses to "run a container".
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from providers.base import (
    NAME_PREFIX,
    GpuOffer,
    Launched,
    LaunchSpec,
    NotFound,
    PodState,
    PodStatus,
    ProviderError,
)

logger = logging.getLogger(__name__)

# What a pod inherits from the server's environment: enough to find programs, the venv and the
# GPUs, and nothing secret (provider keys, database URLs) — a pod only gets what its spec says.
INHERITED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "CUDA_VISIBLE_DEVICES",
    "HF_HOME",
)

# Runs the start command in a child bash and records its exit status atomically, so the status is
# known even when the pod outlives the server that started it (it is then not our child to wait on).
# A SIGTERM/SIGKILL to the group kills this wrapper too: no exit file then means "killed".
_WRAPPER = 'bash -c "$1"; code=$?; printf %s "$code" > "$2.tmp" && mv "$2.tmp" "$2"; exit "$code"'


def pod_env(spec_env: Mapping[str, str]) -> dict[str, str]:
    """The minimal inherited environment plus exactly ``spec_env`` (which wins)."""
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    # `python` in a start command means this interpreter (the project's venv), whatever PATH says.
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", os.defpath)])
    env.update(spec_env)
    return env


def spawn_group(
    argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session (its own process group), output to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ")".
    return raw[raw.rindex(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot): tells a reused pid from ours."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def process_alive(pid: int, start_ticks: int | None) -> bool:
    """Whether ``pid`` is still the process we started (not a zombie, not a reused pid)."""
    if not Path("/proc").is_dir():  # not Linux: no start time to compare, trust the pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = _proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process remains in the process group."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                return True
    return False


def kill_group(
    pgid: int, grace_s: float, reap: Callable[[], object] = lambda: None, poll_s: float = 0.05
) -> None:
    """SIGTERM the whole group (the trainer may save and flush); SIGKILL what is left after."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            reap()
            if not group_alive(pgid):
                return
            time.sleep(poll_s)
    logger.warning("process group %s still has members after SIGKILL", pgid)


@dataclass
class _Record:
    """The on-disk state of one local pod (``<state_dir>/<name>.json``)."""

    name: str
    job_id: str
    command: str
    started_at: float
    log_path: str
    exit_path: str
    pid: int | None = None
    pgid: int | None = None
    start_ticks: int | None = None


class LocalProvider:
    """Runs pods as process groups on this machine; survives server restarts via ``state_dir``."""

    name = "local"

    def __init__(
        self,
        state_dir: str | Path,
        cost_per_hour: float = 0.0,
        grace_s: float = 10.0,
        shell: str = "bash",
    ) -> None:
        self.state_dir = Path(state_dir)
        self.cost_per_hour = cost_per_hour
        self.grace_s = grace_s
        self.shell = shell
        # Our own children, so they can be reaped (no zombies) and their exit codes read.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._gpu: tuple[str, float] | bool | None = False  # False: not probed yet

    # -- Provider interface -------------------------------------------------------------------

    def offers(self) -> list[GpuOffer]:
        gpu = self._local_gpu()
        # Without a GPU the trainer runs on the CPU, so its memory is the machine's RAM.
        name, vram = gpu if gpu else ("CPU only", _ram_gib())
        return [
            GpuOffer(
                provider=self.name,
                gpu_type="local",
                display_name=f"This machine ({name})",
                vram_gb=vram,
                price_per_hour=self.cost_per_hour,
                available=True,
                cloud="local",
            )
        ]

    def launch(self, spec: LaunchSpec) -> Launched:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record_path = self._record_path(spec.name)
        try:
            # O_EXCL makes the claim atomic: two launches of one job cannot both start a process.
            fd = os.open(record_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return self._launched(self._load(spec.name))
        os.close(fd)
        record = self._start(spec)
        return self._launched(record)

    def status(self, ref: str) -> PodStatus:
        record = self._load(ref)
        state, message, exit_code, ended_at = self._observe(record)
        end = ended_at if ended_at is not None else time.time()
        return PodStatus(
            ref=record.name,
            name=record.name,
            state=state,
            uptime_s=max(0.0, end - record.started_at),
            price_per_hour=self.cost_per_hour,
            billed_cost=None,
            gpu_util=None,
            gpu_mem_util=None,
            message=message,
            provider_state=state,
            gpu_type="local",
            exit_code=exit_code,
        )

    def terminate(self, ref: str) -> None:
        try:
            record = self._load(ref)
        except NotFound:
            return
        if record.pgid is not None and self._group_is_ours(record):
            child = self._children.get(record.name)
            kill_group(record.pgid, self.grace_s, reap=child.poll if child else lambda: None)
        self._children.pop(record.name, None)
        # Like a terminated cloud pod, it is gone afterwards; the log stays for the record.
        self._record_path(ref).unlink(missing_ok=True)
        Path(record.exit_path).unlink(missing_ok=True)

    def list_ours(self) -> list[PodStatus]:
        if not self.state_dir.is_dir():
            return []
        names = sorted(p.stem for p in self.state_dir.glob(f"{NAME_PREFIX}*.json"))
        statuses = []
        for name in names:
            try:
                statuses.append(self.status(name))
            except NotFound:  # terminated between the listing and the read
                continue
        return statuses

    # -- internals ----------------------------------------------------------------------------

    def _start(self, spec: LaunchSpec) -> _Record:
        if not spec.start_command:
            self._record_path(spec.name).unlink(missing_ok=True)
            raise ProviderError("the launch spec has no start_command to run", permanent=True)
        pod_dir = self.state_dir / spec.name
        pod_dir.mkdir(parents=True, exist_ok=True)
        record = _Record(
            name=spec.name,
            job_id=spec.job_id,
            command=spec.start_command,
            started_at=time.time(),
            log_path=str(pod_dir / "pod.log"),
            exit_path=str(pod_dir / "exit_code"),
        )
        Path(record.exit_path).unlink(missing_ok=True)
        argv = [self.shell, "-c", _WRAPPER, "tuneboard-pod", spec.start_command, record.exit_path]
        try:
            child = spawn_group(argv, pod_env(spec.env), pod_dir, Path(record.log_path))
        except OSError as exc:
            self._record_path(spec.name).unlink(missing_ok=True)
            raise ProviderError(f"could not start the local pod: {exc}", permanent=True) from exc
        self._children[spec.name] = child
        record.pid = record.pgid = child.pid
        record.start_ticks = process_start_ticks(child.pid)
        self._save(record)
        return record

    def _observe(self, record: _Record) -> tuple[PodState, str, int | None, float | None]:
        """(state, message, exit code, ended_at) from the exit file and the process table."""
        child = self._children.get(record.name)
        if child is not None:
            child.poll()  # reap, so a finished pod is not mistaken for a live zombie
        exit_file = Path(record.exit_path)
        if exit_file.exists():
            code = int(exit_file.read_text() or "-1")
            ended_at = exit_file.stat().st_mtime
            if code == 0:
                return "exited", "exited with code 0", 0, ended_at
            return "error", self._failure_message(record, code), code, ended_at
        if record.pid is None:
            return "pending", "starting", None, None
        if process_alive(record.pid, record.start_ticks):
            return "running", f"running (pid {record.pid})", None, None
        if child is not None and child.returncode is not None:
            # Our child died without the wrapper recording a code: it was killed by a signal.
            return "error", self._failure_message(record, child.returncode), child.returncode, None
        return "error", self._failure_message(record, None), None, None

    def _failure_message(self, record: _Record, code: int | None) -> str:
        if code is None:
            head = "the process ended without an exit status (killed?)"
        elif code < 0 or code > 128:
            signum = -code if code < 0 else code - 128
            head = f"killed by signal {signum} (exit code {code})"
        else:
            head = f"exited with code {code}"
        tail = _last_line(Path(record.log_path))
        return f"{head}: {tail}" if tail else head

    def _group_is_ours(self, record: _Record) -> bool:
        # A process group id cannot be reused while any member lives; if a *different* process
        # now holds the leader's pid, our whole group is gone and killpg would hit a stranger.
        assert record.pid is not None
        ticks = process_start_ticks(record.pid)
        return ticks is None or record.start_ticks is None or ticks == record.start_ticks

    def _launched(self, record: _Record) -> Launched:
        return Launched(
            ref=record.name,
            name=record.name,
            gpu_type="local",
            price_per_hour=self.cost_per_hour,
            url=Path(record.log_path).resolve().as_uri(),
        )

    def _record_path(self, name: str) -> Path:
        if not name.startswith(NAME_PREFIX) or "/" in name or name.startswith("."):
            raise NotFound(f"no local pod named {name!r}")
        return self.state_dir / f"{name}.json"

    def _load(self, name: str) -> _Record:
        path = self._record_path(name)
        for _ in range(20):
            try:
                raw = path.read_text()
            except FileNotFoundError:
                raise NotFound(f"no local pod named {name!r}") from None
            if raw:
                return _Record(**json.loads(raw))
            time.sleep(0.05)  # claimed by a launch that has not written the record yet
        return _Record(
            name=name, job_id="", command="", started_at=time.time(), log_path="", exit_path=""
        )

    def _save(self, record: _Record) -> None:
        path = self._record_path(record.name)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)  # atomic: a reader never sees half a record

    def _local_gpu(self) -> tuple[str, float] | None:
        if self._gpu is False:
            self._gpu = _probe_nvidia_gpu()
        return self._gpu  # type: ignore[return-value]


def _probe_nvidia_gpu() -> tuple[str, float] | None:
    """(name, VRAM GB) of the first NVIDIA GPU, if nvidia-smi is here and answers."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.strip().splitlines()[0] if out.strip() else ""
    if "," not in first:
        return None
    name, mib = (part.strip() for part in first.split(",", 1))
    return name, round(float(mib) / 1024, 1)


def _ram_gib() -> float:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def _last_line(path: Path, limit: int = 300) -> str:
    """The last non-empty line of a log, to say why a pod failed without opening the log."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:limit] if lines else ""
