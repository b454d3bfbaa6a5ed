"""Streaming step kernels (numba, ``steps``), the numeric text-table parser (``table``), their array layouts
(``layout``), an ahead-of-time build of the same code (``aot``); the step kernels' plain Python/numpy twin, which
the tests compare against, is ``tests/agent/reference.py``.

Use them through ``edge_agent.analysis.analyzer`` (validation, contiguous arrays, Step records); the kernel
functions themselves are private and take raw parameter vectors. :func:`load_kernels` picks the
backend once per process, from ``$FOOTFALL_KERNELS``:

* ``auto`` (default): the ahead-of-time build for the current sources if one exists in
  ``aot.kernel_dir()`` — then numba is never imported — else the numba JIT (on-disk cached);
* ``aot``: the ahead-of-time build, or an error saying how to make one;
* ``jit``: always numba.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

Backend = Literal["aot", "jit"]


class KernelsUnavailable(RuntimeError):
    """``FOOTFALL_KERNELS=aot`` but there is no build for the current sources."""


@dataclass(frozen=True)
class Kernels:
    run_chunk: Callable[..., Any]
    flush_state: Callable[..., Any]
    parse_table: Callable[..., Any]  # numeric text tables (kernels/table.py)
    backend: Backend
    origin: str  # the AOT module's path, or the numba cache directory


_lock = threading.Lock()
_loaded: Kernels | None = None


def load_kernels() -> Kernels:
    """The process's kernels (chosen and loaded on the first call; thread-safe)."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _choose()
        return _loaded


def _choose() -> Kernels:
    from edge_agent.analysis.kernels import aot

    mode = os.environ.get("FOOTFALL_KERNELS", "auto").strip().lower() or "auto"
    if mode not in ("auto", "aot", "jit"):
        raise KernelsUnavailable(f"FOOTFALL_KERNELS={mode!r}: must be auto, aot or jit")
    if mode != "jit":
        module = aot.load()
        if module is not None:
            return Kernels(module.run_chunk, module.flush_state, module.parse_table, "aot", str(module.__file__))
        if mode == "aot":
            raise KernelsUnavailable(
                f"FOOTFALL_KERNELS=aot but there is no ahead-of-time build of these kernels in "
                f"{aot.kernel_dir()}: run `footfall-agent build-kernels` (needs gcc) or set FOOTFALL_KERNELS=auto"
            )
    from edge_agent.analysis.kernels import steps, table

    cache = os.environ.get("NUMBA_CACHE_DIR", "numba default")
    return Kernels(steps.run_chunk, steps.flush_state, table.parse_table, "jit", cache)
