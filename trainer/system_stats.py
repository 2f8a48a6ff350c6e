"""Memory and utilisation figures for `system` events, read without synchronising the GPU.

`torch.cuda.memory_*` read the caching allocator's host-side counters (no kernel launch, no sync);
NVML is queried only when `pynvml` is installed.
"""

from __future__ import annotations

import logging
from typing import Any

import psutil
import torch

log = logging.getLogger(__name__)

MB = 1024 * 1024


class SystemStats:
    def __init__(self) -> None:
        self._process = psutil.Process()
        self._cuda = torch.cuda.is_available()
        self._nvml_handle: Any = self._open_nvml() if self._cuda else None

    @staticmethod
    def _open_nvml() -> Any:
        try:
            import pynvml

            pynvml.nvmlInit()
            return pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        except Exception as exc:  # optional: no pynvml, no driver library, no permission
            log.debug("NVML unavailable: %s", exc)
            return None

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        if self._cuda:
            values["gpu_mem_allocated_mb"] = torch.cuda.memory_allocated() / MB
            values["gpu_mem_reserved_mb"] = torch.cuda.memory_reserved() / MB
            values["gpu_mem_peak_mb"] = torch.cuda.max_memory_allocated() / MB
        if self._nvml_handle is not None:
            import pynvml

            values["gpu_util"] = float(pynvml.nvmlDeviceGetUtilizationRates(self._nvml_handle).gpu)
        values["cpu_mem_rss_mb"] = self._process.memory_info().rss / MB
        return values
