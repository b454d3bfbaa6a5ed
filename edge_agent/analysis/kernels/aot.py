"""Ahead-of-time build of the step kernels: the same code as :mod:`edge_agent.analysis.kernels.steps`,
compiled once into a C extension with numba's ``pycc``, so the agent runs it without importing
numba at all.

Why: numba + llvmlite are most of the agent's memory. ``import numba`` alone takes a process from
27 MB (numpy) to ≈ 92 MB RSS and loading the cached JIT kernels adds ≈ 65 MB (LLVM), which put the
agent at ≈ 185 MB against its 150 MB budget. The AOT module needs only numpy at run time
(benchmarks/bench_agent.py prints both side by side).

* **Build**: ``footfall-agent build-kernels`` (or ``python -m edge_agent.analysis.kernels.aot``). Needs numba
  and a C compiler/linker (``cc``; ``gcc`` on Raspberry Pi OS) at build time only; ≈ 5 s on the
  2-core x86-64 dev VM.
* **CPU**: ``--cpu host`` (default) compiles for this machine's CPU, as the JIT does: as fast as the
  JIT (benchmarks/bench_kernels.py prints the ratio). Its name includes a hash of this CPU's
  identity (/proc/cpuinfo), so a copy on another machine is not loaded there. ``--cpu generic``
  targets the architecture's baseline (no AVX2 on x86-64): portable, for images built on one
  machine and run on others (the Docker image), at ≈ 0.5–0.8× the JIT's kernel throughput —
  immaterial for the agent, whose kernels take well under 0.1 % of a core.
* **Where**: :func:`kernel_dir` — ``$FOOTFALL_KERNEL_DIR``, else ``$XDG_CACHE_HOME/footfall/kernels``
  (``~/.cache/footfall/kernels``).
* **Which build**: the module is named after :func:`build_key`, a hash of the kernel sources
  (``steps.py``, ``layout.py`` and this module, which holds the signatures), the numba and numpy
  versions, the Python ABI and the machine. A build from other code is therefore never loaded: it is
  simply not found, and the JIT runs instead.
* **Same numbers**: both backends compile the same Python source; they may differ in the last bits
  of a float (the fused sensor reduction is compiled with ``fastmath`` re-association, and a build's
  vector width can differ from the JIT's, e.g. ``generic``). Tests bound that at 1e-9 relative.
* **Trust**: the module is machine code run by the agent, so it is loaded only when neither it nor its
  directory is writable by group or others (like ssh's key checks); the build creates the directory 0755.
* **Caveat**: ``numba.pycc`` is marked for deprecation upstream (a successor is planned). The JIT
  path stays the reference; the AOT build is an optional, checked optimisation.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_SOURCES = (_HERE / "steps.py", _HERE / "layout.py", Path(__file__).resolve())  # code, layouts, signatures
#: numba types of the exported kernels (what ``edge_agent.analysis.analyzer`` passes; C-contiguous arrays).
_F1, _F2 = "f8[::1]", "f8[:, ::1]"
SIGNATURES = {
    # t, raw, rawi | p, weights, lut | st, sensors, buf | events
    "run_chunk": f"UniTuple(i8, 2)({_F1}, f4[:, ::1], i4[:, ::1], {_F1}, {_F2}, {_F1}, {_F1}, {_F2}, {_F2}, {_F2})",
    "flush_state": f"i8({_F1}, {_F2}, {_F1}, {_F2})",
}


class KernelBuildError(RuntimeError):
    """The AOT kernels could not be built (no compiler, no numba, unwritable directory)."""


def kernel_dir() -> Path:
    """Where AOT builds live (see the module docstring)."""
    env = os.environ.get("FOOTFALL_KERNEL_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "footfall" / "kernels"


@functools.cache
def build_key() -> str:
    """Hash of everything the machine code depends on; cheap (reads versions, imports no numba).
    Computed once per process: the sources and versions do not change under a running program."""
    h = hashlib.sha256()
    for src in _SOURCES:
        h.update(src.read_bytes())
    import numpy

    try:
        numba_version = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:  # no build can match; the JIT import then names numba
        numba_version = "none"
    for part in (
        numba_version,
        numpy.__version__,
        sys.implementation.cache_tag,
        importlib.machinery.EXTENSION_SUFFIXES[0],
        platform.machine(),
    ):
        h.update(b"\0" + str(part).encode())
    return h.hexdigest()[:16]


@functools.cache
def cpu_identity() -> str:
    """Short hash of this CPU's model and features (first /proc/cpuinfo block), without LLVM."""
    keys = ("vendor_id", "cpu family", "model", "model name", "flags", "CPU implementer", "CPU part", "Features")
    try:
        block = Path("/proc/cpuinfo").read_text(errors="replace").split("\n\n", 1)[0]
    except OSError:
        block = platform.processor()
    ident = [ln.strip() for ln in block.splitlines() if ln.split(":", 1)[0].strip() in keys]
    return hashlib.sha256("\n".join(ident).encode()).hexdigest()[:8]


def module_name(cpu: str = "host") -> str:
    suffix = f"host{cpu_identity()}" if cpu == "host" else "generic"
    return f"_footfall_steps_{build_key()}_{suffix}"


def module_path(directory: Path | None = None, cpu: str = "host") -> Path:
    return (directory or kernel_dir()) / (module_name(cpu) + importlib.machinery.EXTENSION_SUFFIXES[0])


def load(directory: Path | None = None) -> ModuleType | None:
    """The AOT module built from the current sources (for this CPU, else the generic one), or None."""
    for cpu in ("host", "generic"):
        module = _load(directory, cpu)
        if module is not None:
            return module
    return None


def _load(directory: Path | None, cpu: str) -> ModuleType | None:
    name = module_name(cpu)
    if name in sys.modules:
        return sys.modules[name]
    path = module_path(directory, cpu)
    if not path.is_file():
        return None
    unsafe = [q for q in (path, path.parent) if q.stat().st_mode & 0o022]
    if unsafe:  # machine code the agent would run: like ssh, refuse what others can replace
        log.warning(
            "ahead-of-time kernels at %s not loaded: %s writable by group/others; using the numba JIT",
            path,
            " and ".join(str(q) for q in unsafe),
        )
        return None
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError("no loader")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError) as err:
        log.warning("ahead-of-time kernels at %s cannot be loaded (%s); using the numba JIT", path, err)
        return None
    sys.modules[name] = module
    return module


def toolchain_missing() -> str | None:
    """What the build lacks on this machine (a C compiler, Python's headers), or None."""
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        return "no C compiler/linker found (install gcc, e.g. `sudo apt install gcc`)"
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        return f"Python's C headers are missing ({include}/Python.h; install python3-dev)"
    return None


def build(directory: Path | None = None, *, cpu: str = "host", force: bool = False) -> Path:
    """Compile the kernels into ``directory`` for ``cpu`` ("host" or "generic"); returns the module
    path. Atomic: a crash mid-build leaves no half-written module behind."""
    if cpu not in ("host", "generic"):
        raise KernelBuildError(f"cpu {cpu!r}: must be 'host' or 'generic'")
    target = module_path(directory, cpu)
    if target.is_file() and not force:
        return target
    missing = toolchain_missing()
    if missing:
        raise KernelBuildError(missing)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycc's pending-deprecation notice (see the module docstring)
            from numba.pycc import CC
    except ImportError as err:
        raise KernelBuildError(f"numba is needed to build the kernels: {err}") from err
    from edge_agent.analysis.kernels import steps

    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)  # readable (images), never shared-writable
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        cc = CC(module_name(cpu))
        cc.output_dir = tmp
        cc.verbose = False
        if cpu == "host":
            import llvmlite.binding

            cc.target_cpu = llvmlite.binding.get_host_cpu_name()
        for fn, sig in SIGNATURES.items():
            cc.export(fn, sig)(getattr(steps, fn).py_func)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cc.compile()
        except Exception as err:  # numba/LLVM/linker errors come in many types
            raise KernelBuildError(f"building the kernels in {target.parent} failed: {err}") from err
        built = Path(tmp) / target.name
        if not built.is_file():
            raise KernelBuildError(f"the build produced no {target.name} in {tmp}")
        built.chmod(0o755)  # whatever the umask (002 on many desktops): the loader refuses shared-writable code
        os.replace(built, target)
    return target


def remove_stale(directory: Path | None = None) -> list[Path]:
    """Delete builds of other code versions (they can never be loaded again)."""
    d = directory or kernel_dir()
    current = f"_footfall_steps_{build_key()}_"  # this code's builds, any CPU
    stale = [p for p in d.glob("_footfall_steps_*") if not p.name.startswith(current) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="footfall-agent build-kernels",
        description="Compile the step kernels ahead of time (no numba/LLVM in the running agent).",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, help="output directory (default: $FOOTFALL_KERNEL_DIR or ~/.cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching build exists")
    parser.add_argument(
        "--cpu",
        choices=["host", "generic"],
        default="host",
        help="host: this machine's CPU, as fast as the JIT (default); generic: portable (images)",
    )


def run(args: argparse.Namespace) -> int:
    directory = args.dir or kernel_dir()
    existing = module_path(directory, args.cpu)
    if existing.is_file() and not args.force:
        print(f"up to date: {existing}")
    else:
        t0 = time.perf_counter()
        try:
            path = build(directory, cpu=args.cpu, force=args.force)
        except KernelBuildError as err:
            print(f"footfall-agent build-kernels: {err}", file=sys.stderr)
            return 1
        print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    for old in remove_stale(directory):
        print(f"removed stale build {old.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
