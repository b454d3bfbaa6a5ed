"""``footfall-agent``: the edge agent's command line (argparse).

Commands: ``run``, ``calibrate``, ``record``, ``simulate``, ``profiles list|show``, ``validate-config``,
``analyze`` (→ :mod:`edge_agent.analysis.report`), ``validate`` (→ :mod:`edge_agent.analysis.validate`), ``health``,
``build-kernels`` (→ :mod:`edge_agent.analysis.kernels.aot`).

``NUMBA_CACHE_DIR`` must be set before numba is imported (numba reads it once), so this module
imports nothing numba-related at the top: the configuration is loaded first, the cache directory
exported, and only then the pipeline (and the kernels) imported. A read-only installation works
as long as the cache directory is writable (docs/design.md §6).

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.common.cli import add_broker_arguments, broker_overrides
from edge_agent.common.config import ConfigError

if TYPE_CHECKING:  # edge_agent.config (the agent's whole configuration) is imported by the commands that read it:
    from edge_agent.config import AgentConfig  # ``analyze`` starts without it

log = logging.getLogger("footfall")


# -- shared options ----------------------------------------------------------------------------------


def _add_config_options(p: argparse.ArgumentParser, *, source: bool = True) -> None:
    p.add_argument("--config", "-c", type=Path, help="YAML configuration file (see docs/raspberry-pi.md)")
    p.add_argument("--device-id", help="device id (overrides the config)")
    p.add_argument("--state-dir", type=Path, help="state directory (outbox, calibration, heartbeat)")
    p.add_argument("--profile", help="hardware profile name or YAML path")
    p.add_argument("--body-mass", type=float, metavar="KG", help="body mass in kg")
    p.add_argument("--numba-cache-dir", type=Path, help="writable numba cache directory")
    p.add_argument("--kernels", choices=["auto", "aot", "jit"], help="kernel backend (see build-kernels)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
    if source:
        p.add_argument(
            "--source",
            metavar="simulator|replay:PATH",
            help="insole source: the simulator, or replay of a recording (overrides the config's source)",
        )
        p.add_argument("--speed", type=float, help="replay/simulator speed (1 = real time, 0 = as fast as possible)")
        p.add_argument("--seed", type=int, help="simulator random seed")


def _source_override(spec: str) -> dict[str, Any]:
    if spec == "simulator":
        return {"type": "simulator"}
    if spec.startswith("replay:") and len(spec) > len("replay:"):
        return {"type": "replay", "path": spec[len("replay:") :]}
    raise ConfigError(f"--source {spec!r}: expected 'simulator' or 'replay:PATH'")


def _feedback_sink(spec: str) -> dict[str, Any]:
    """``--feedback``: wav:PATH, alsa[:DEVICE], pulse[:SINK], gpio:PIN or none (the rest of the sink from the
    config)."""
    kind, _, arg = spec.partition(":")
    if spec == "none":
        return {"type": "none"}
    if kind == "wav" and arg:
        return {"type": "wav", "path": arg}
    if kind == "alsa":
        return {"type": "alsa", **({"device": arg} if arg else {})}
    if kind == "pulse":
        return {"type": "pulse", **({"sink": arg} if arg else {})}
    if kind == "gpio" and arg:
        return {"type": "gpio", "pin": arg}
    raise ConfigError(f"--feedback {spec!r}: expected wav:PATH, alsa[:DEVICE], pulse[:SINK], gpio:PIN or none")


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """The config file + environment + command-line overrides."""
    overrides: dict[str, Any] = {
        "device_id": getattr(args, "device_id", None),
        "state_dir": getattr(args, "state_dir", None),
        "profile": getattr(args, "profile", None),
        "body_mass_kg": getattr(args, "body_mass", None),
        "numba_cache_dir": getattr(args, "numba_cache_dir", None),
        "kernels": getattr(args, "kernels", None),
        "log_level": getattr(args, "log_level", None),
    }
    mqtt = broker_overrides(args, "footfall-agent")
    if mqtt:
        overrides["mqtt"] = mqtt
    if getattr(args, "target_cadence", None) is not None:
        overrides["feedback"] = {"target_cadence_spm": args.target_cadence}
    sink = _feedback_sink(args.feedback) if getattr(args, "feedback", None) else None
    source: dict[str, Any] | None = None
    if getattr(args, "source", None):
        source = _source_override(args.source)
    extra: dict[str, Any] = {}
    if getattr(args, "speed", None) is not None:
        extra["speed"] = args.speed
    if getattr(args, "seed", None) is not None:
        extra["params"] = {"seed": args.seed}
    from edge_agent.config import load_config

    return load_config(args.config, source_override=source, source_extra=extra, feedback_sink=sink, **overrides)


def _setup(cfg: AgentConfig) -> None:
    """Logging and the numba cache, before anything imports numba."""
    logging.basicConfig(
        level=getattr(logging, cfg.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if cfg.numba_cache_dir is not None:
        cfg.numba_cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["NUMBA_CACHE_DIR"] = str(cfg.numba_cache_dir)
    os.environ["FOOTFALL_KERNELS"] = cfg.kernels  # read by edge_agent.analysis.kernels.load_kernels
    if cfg.kernel_dir is not None:
        os.environ["FOOTFALL_KERNEL_DIR"] = str(cfg.kernel_dir)


# -- commands ----------------------------------------------------------------------------------------


def run_duration(cfg: AgentConfig, duration_s: float | None) -> float | None:
    """``--duration S`` means S seconds of running: the simulator simulates a run of S seconds (with its own
    standing and walking around it, so the run ends as a run does) and the pipeline reads the source to its end;
    any other source is read for S seconds of source time (a recording shorter than that ends sooner)."""
    if duration_s is None or cfg.source.type != "simulator":
        return duration_s
    cfg.source.duration_s = duration_s  # type: ignore[union-attr]
    cfg.source.endless = False  # type: ignore[union-attr]
    return None


def cmd_run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    _setup(cfg)
    from edge_agent.runtime.agent import run_agent

    stats = asyncio.run(run_agent(cfg, duration_s=run_duration(cfg, args.duration)))
    if args.stats:
        print(json.dumps(stats, default=str, indent=2))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    _setup(cfg)
    from edge_agent.runtime.agent import calibrate, calibration_path

    try:
        cal = asyncio.run(
            calibrate(
                cfg,
                zero_s=args.zero_seconds,
                settle_s=args.settle_seconds,
                stand_s=args.stand_seconds,
                skip_zero=args.skip_zero,
            )
        )
    except RuntimeError as err:
        print(f"footfall-agent calibrate: {err}", file=sys.stderr)
        return 1
    bw = cal.body_weight_n or 0.0
    print(
        f"calibration written to {calibration_path(cfg)}: body weight {bw:.0f} N ({bw / 9.80665:.1f} kg), "
        f"zero offsets for {', '.join(sorted(cal.offsets)) or 'no'} insole(s)"
    )
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    _setup(cfg)
    from edge_agent.runtime.agent import record

    counts = asyncio.run(record(cfg, args.out, duration_s=args.duration, notes=args.notes))
    print(f"recorded {counts['frames']} frames to {args.out} ({counts['rejected']} rejected)")
    return 0


def _add_runparams_flags(p: argparse.ArgumentParser) -> list[str]:
    """One ``--flag`` per scalar field of :class:`edge_agent.recordings.simulator.RunParams` (help = its title)."""
    from edge_agent.recordings.simulator import RunParams

    names = []
    for name, f in RunParams.model_fields.items():
        if name == "spikes":
            continue
        ann = str(f.annotation)
        typ = int if ann in ("int", "<class 'int'>") else float
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"rp_{name}",
            type=typ,
            default=None,
            help=f"{f.title or name} (default {f.default})",
        )
        names.append(name)
    p.add_argument(
        "--spike",
        action="append",
        default=[],
        metavar="T0,T1,FACTOR",
        help="loading spike: VALR × FACTOR between T0 and T1 s (repeatable)",
    )
    return names


def cmd_simulate(args: argparse.Namespace) -> int:
    from edge_agent.profiles import load_profile
    from edge_agent.recordings import save_recording
    from edge_agent.recordings.simulator import RunParams, simulate

    values = {k[3:]: v for k, v in vars(args).items() if k.startswith("rp_") and v is not None}
    try:
        spikes = [tuple(float(x) for x in s.split(",")) for s in args.spike]
        if any(len(s) != 3 for s in spikes):
            raise ValueError("each --spike needs T0,T1,FACTOR")
        params = RunParams(**values, spikes=spikes)
    except ValueError as err:
        print(f"footfall-agent simulate: {err}", file=sys.stderr)
        return 2
    if args.out.exists():
        print(f"footfall-agent simulate: {args.out} exists; refusing to overwrite", file=sys.stderr)
        return 2
    profile = load_profile(args.profile)
    rec, truths = simulate(profile, params)
    save_recording(rec, args.out)
    print(f"simulated {rec.duration_s:.1f} s of {profile.name} ({len(truths)} steps) → {args.out}")
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from edge_agent.profiles import list_profiles, load_profile

    if args.action == "list":
        for name in list_profiles():
            p = load_profile(name)
            print(
                f"{name:24s} {p.n_sensors:5d} sensors  {p.sample_rate_hz:7.1f} Hz  "
                f"{p.transport.type:7s} {p.description}"
            )
        return 0
    if not args.name:
        print("footfall-agent profiles show: NAME is required", file=sys.stderr)
        return 2
    prof = load_profile(args.name)
    print(json.dumps(prof.model_dump(mode="json"), indent=2))
    return 0


def cmd_validate_config(args: argparse.Namespace) -> int:
    """Everything ``run`` checks before it measures: the file, the hardware profile, a replay's recording."""
    from edge_agent.config import describe, load_config
    from edge_agent.profiles import ProfileError, load_profile

    try:
        cfg = load_config(args.file)
        try:
            load_profile(cfg.profile)
        except ProfileError as err:
            raise ConfigError(f"{args.file}: key 'profile': {err}") from None
        replay = getattr(cfg.source, "path", None) if cfg.source.type == "replay" else None
        if replay is not None and not Path(replay).exists():
            raise ConfigError(f"{args.file}: key 'source.path': the recording {str(replay)!r} does not exist")
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"{args.file}: OK")
    if args.show:
        print(describe(cfg), end="")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.runtime.health import check_health

    state_dir = args.state_dir
    if state_dir is None:
        try:
            state_dir = load_config(args.config).state_dir
        except ConfigError as err:
            print(err, file=sys.stderr)
            return 2
    ok, msg = check_health(state_dir, args.max_age, args.max_failing)
    print(msg)
    return 0 if ok else 1


# -- parser ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="footfall-agent", description="footfall edge agent: insoles → steps → MQTT summaries."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="measure and publish (the service)")
    _add_config_options(p)
    add_broker_arguments(p, env="FOOTFALL_MQTT__PASSWORD")
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="S seconds of running: the simulator simulates an S-second run; other sources are read for S seconds "
        "of source time; then the outbox is drained",
    )
    p.add_argument("--stats", action="store_true", help="print the final counters as JSON")
    p.add_argument(
        "--feedback",
        metavar="SINK",
        help="in-run feedback to wav:PATH, alsa[:DEVICE], pulse[:SINK] or gpio:PIN; none: off (docs/feedback.md)",
    )
    p.add_argument(
        "--target-cadence",
        type=float,
        metavar="SPM",
        help="metronome and cadence band at SPM steps/min (overrides the program's target)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("calibrate", help="zero offsets (no load) and body weight (standing) → state_dir")
    _add_config_options(p)
    p.add_argument("--zero-seconds", type=float, default=3.0, help="no-load phase length (default 3)")
    p.add_argument("--stand-seconds", type=float, default=5.0, help="standing phase length (default 5)")
    p.add_argument("--skip-zero", action="store_true", help="keep zero offsets at 0 (only body weight)")
    p.add_argument("--settle-seconds", type=float, default=3.0, help="pause to stand up between phases (default 3)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("record", help="raw capture into a native recording (.ffrec)")
    p.add_argument("out", type=Path, help="output file (.ffrec); never overwritten")
    _add_config_options(p)
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--notes", default="", help="free text stored in the recording")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("simulate", help="write a simulated recording (RunParams flags)")
    p.add_argument("out", type=Path, help="output file (.ffrec)")
    p.add_argument("--profile", default="moticon-opengo", help="hardware profile (default moticon-opengo)")
    _add_runparams_flags(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("profiles", help="list or show hardware profiles")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("validate-config", help="check a configuration file (errors name key, value and line)")
    p.add_argument("file", type=Path)
    p.add_argument("--show", action="store_true", help="print the effective configuration (secrets redacted)")
    p.set_defaults(func=cmd_validate_config)

    p = sub.add_parser("health", help="exit 0 if the running agent's heartbeat is fresh (Docker HEALTHCHECK)")
    p.add_argument("--config", "-c", type=Path)
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument(
        "--max-failing",
        type=float,
        default=30.0,
        metavar="S",
        help="unhealthy once the outbox publisher has failed for S seconds in a row (default 30)",
    )
    p.set_defaults(func=cmd_health)

    p = sub.add_parser(
        "build-kernels", help="compile the step kernels ahead of time: the agent then runs without numba/LLVM"
    )
    p.add_argument("--config", "-c", type=Path, help="take kernel_dir from this configuration file")
    from edge_agent.analysis.kernels import aot

    aot.add_arguments(p)
    p.set_defaults(func=cmd_build_kernels)

    p = sub.add_parser("analyze", help="per-step table and summary of a recording")
    try:
        from edge_agent.analysis import report

        report.add_analyze_arguments(p)
        p.set_defaults(func=report.run_analyze)
    except ImportError as err:
        p.set_defaults(func=lambda _a, e=err: _unavailable("analyze", e))

    p = sub.add_parser(
        "validate", help="validate the analysis against the real recordings (DATA_DIR [--json])", add_help=False
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to python -m edge_agent.analysis.validate")
    p.set_defaults(func=cmd_validate)
    return parser


def cmd_build_kernels(args: argparse.Namespace) -> int:
    from edge_agent.analysis.kernels import aot
    from edge_agent.config import load_config

    if args.dir is None and args.config is not None:
        args.dir = load_config(args.config).kernel_dir
    return aot.run(args)


def _unavailable(what: str, err: BaseException) -> int:
    print(f"footfall-agent {what}: not available in this installation ({err})", file=sys.stderr)
    return 1


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        from edge_agent.analysis import validate
    except ImportError as err:
        return _unavailable("validate", err)
    main = getattr(validate, "main", None)
    if main is None:
        return _unavailable("validate", AttributeError("edge_agent.analysis.validate.main"))
    return int(main(list(args.args)) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["validate"]:  # everything after it belongs to edge_agent.analysis.validate (incl. --help)
        return cmd_validate(argparse.Namespace(args=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        # Known failures get one clear line (what and where), not a traceback.
        from edge_agent.analysis.kernels import KernelsUnavailable
        from edge_agent.profiles import ProfileError
        from edge_agent.recordings import RecordingError
        from edge_agent.runtime.feedback import FeedbackError
        from edge_agent.runtime.outbox import OutboxError
        from edge_agent.sources.base import SourceError

        if isinstance(err, ProfileError | RecordingError | KernelsUnavailable | FeedbackError):
            print(f"footfall-agent: {err}", file=sys.stderr)
            return 2
        analysis = sys.modules.get("edge_agent.analysis.analyzer")  # not imported here: it would load numba
        if analysis is not None and isinstance(err, analysis.AnalysisError):
            print(f"footfall-agent: analysis settings: {err}", file=sys.stderr)
            return 2
        if isinstance(err, SourceError | OutboxError | PermissionError | FileNotFoundError):
            print(f"footfall-agent: {err}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
