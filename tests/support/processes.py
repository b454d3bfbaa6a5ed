"""Child processes measured from outside: their own peak resident memory, read from ``/proc/<pid>/status``.

``VmHWM`` is the peak RSS of the process's current address space, so it starts afresh at ``exec``; the
``wait4``/``getrusage`` figure does not (it keeps the peak of the parent's pages the child inherited at fork, so
a child of a big pytest process would look as big as pytest).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def run_measured(argv: list[str], poll_s: float = 0.005, **kw: Any) -> tuple[int, float, str, str]:
    """Run ``argv`` to the end; (exit code, its peak RSS in MB, stdout, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.communicate()), daemon=True)
    reader.start()
    peak = 0.0
    while proc.poll() is None:
        hwm = vm_hwm_mb(proc.pid)  # the last reading before exit holds the peak (VmHWM only grows)
        if hwm is not None:
            peak = max(peak, hwm)
        time.sleep(poll_s)
    reader.join()
    return proc.returncode, peak, out[0], out[1]
