"""``footfall-dashboard``: run the plugin, validate a config, export runs, seed a demo history.

Exit codes: 0 ok, 2 bad config or arguments (the message names the key and the line), 1 runtime failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from edge_agent.common.cli import add_broker_arguments, broker_overrides
from plugin import __version__, targets
from plugin.config import ConfigError, DashboardConfig, load_config
from plugin.store import StoreError


def _config(args: argparse.Namespace) -> DashboardConfig:
    overrides: dict[str, Any] = {}
    mqtt = broker_overrides(args, "footfall-dashboard")
    if mqtt:
        overrides["mqtt"] = mqtt
    if getattr(args, "db", None):
        overrides["db_path"] = args.db
    if getattr(args, "listen", None):
        overrides["listen"] = args.listen
    if getattr(args, "notify_file", None):
        overrides["notify_urls_file"] = args.notify_file
    cfg = load_config(args.config, **overrides)
    if getattr(args, "notify", None):
        cfg = cfg.model_copy(update={"notify_urls": [*cfg.notify_urls, *(_secret(u) for u in args.notify)]})
    return cfg


def _secret(url: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(url)


def cmd_run(args: argparse.Namespace) -> int:
    from plugin.service import DashboardService, ListenError

    cfg = _config(args)
    logging.getLogger().setLevel(cfg.log_level)
    service = DashboardService(cfg)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await service.start()
            print(f"footfall dashboard {__version__}: {service.url or '(web disabled)'} — broker "
                  f"{cfg.mqtt.redacted_url}, database {cfg.db_path}", flush=True)  # fmt: skip
            await stop.wait()
        finally:
            await service.stop()

    try:
        asyncio.run(main())
    except ListenError as err:
        print(f"footfall-dashboard: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.file)
    print(f"{args.file}: OK")
    print(f"  broker {cfg.mqtt.redacted_url} (base topic {cfg.mqtt.base_topic}), database {cfg.db_path}, "
          f"listen {cfg.listen}, {len(cfg.notify_urls)} notification URL(s)")  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from plugin.store import Store

    if (args.format == "fit") != (args.run is not None):
        print("footfall-dashboard export: --format fit needs --run RUN_ID (and --run is only for fit)", file=sys.stderr)
        return 2
    db = Path(args.db) if args.db else _config(args).db_path
    if not db.exists():
        raise ConfigError(f"{db}: no such database")
    if args.format == "fit":
        return _export_fit(db, args.run, args.out)
    with Store(db) as store:
        text = store.export_runs(args.format, runner=args.runner)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({text.count(chr(10)) if args.format == 'csv' else 'json'} lines)")
    else:
        sys.stdout.write(text)
    return 0


def _export_fit(db: Path, run_id: str, out: Path | None) -> int:
    """One run as a FIT activity file: ``--out FILE``, ``--out -`` (stdout) or ``footfall-<run id>.fit`` here."""
    from edge_agent.common.fitfile import FitExportError
    from plugin.fit_export import export_run_fit
    from plugin.store import Store

    if str(out) == "-" and sys.stdout.isatty():
        print("footfall-dashboard export: a FIT file is binary: give --out FILE or redirect stdout", file=sys.stderr)
        return 2
    problem = f"no run {run_id!r} in {db}"
    with Store(db) as store:
        try:
            exported = export_run_fit(store, run_id)
        except FitExportError as err:
            exported, problem = None, str(err)
    if exported is None:
        print(f"footfall-dashboard export: {problem}", file=sys.stderr)
        return 2
    name, fit = exported
    target = "-" if str(out) == "-" else str(out or name)
    if target == "-":
        sys.stdout.buffer.write(fit.data)
        sys.stdout.buffer.flush()
    else:
        Path(target).write_bytes(fit.data)
    print(f"wrote {target} ({len(fit.data)} bytes, {fit.messages.get('record', 0)} records)",
          file=sys.stderr if target == "-" else sys.stdout)  # fmt: skip
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from plugin.history import RunnerModel, Scenario, seed_history
    from plugin.store import Store

    db = Path(args.db) if args.db else _config(args).db_path
    scenario = Scenario()
    if args.demo_alerts:
        weeks = args.weeks
        scenario = Scenario(spike=(4 * weeks - 2, 12, 2, 1.6), fatigue_runs=(4 * weeks - 4,),
                            forefoot_transition=(max(1, weeks - 4), weeks - 1, 0.6))  # fmt: skip
    kwargs: dict[str, Any] = {"weeks": args.weeks, "seed": args.seed, "scenario": scenario,
                              "runner": RunnerModel(name=args.runner, device_id=args.device_id)}  # fmt: skip
    with Store(db) as store:
        if args.demo_alerts:  # store message by message and run the risk rules, as the live service does
            from edge_agent.contract import WindowSummary
            from plugin.history import generate_history
            from plugin.risk import RiskEngine

            engine = RiskEngine(store)
            n = 0
            for msg in generate_history(**kwargs):
                if store.insert_message(msg):
                    n += 1
                    engine.on_summary(msg) if isinstance(msg, WindowSummary) else engine.on_run(msg)
        else:
            n = seed_history(store, **kwargs)
        counts = store.counts()
    print(f"seeded {db}: {n} messages, {counts['runs']} runs, {counts['windows']} windows, {counts['alerts']} alerts")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall-dashboard", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"footfall-dashboard {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run ingest, risk engine, notifications and the web dashboard")
    r.add_argument("--config", type=Path, help="YAML config file")
    add_broker_arguments(r, env="FOOTFALL_DASHBOARD_MQTT__PASSWORD")
    r.add_argument("--db", type=Path, help="SQLite database file")
    r.add_argument("--listen", help="HOST:PORT of the web dashboard (default 127.0.0.1:8765)")
    r.add_argument(
        "--notify-file",
        type=Path,
        metavar="FILE",
        help="Apprise notification URLs, one per line (they hold tokens: keep them out of the command line)",
    )
    r.add_argument(
        "--notify",
        action="append",
        metavar="APPRISE_URL",
        help="add a notification URL (repeatable; visible in the process list: prefer --notify-file or "
        "FOOTFALL_DASHBOARD_NOTIFY_URLS)",
    )
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate-config", help="check a config file; errors name the key and line")
    v.add_argument("file", type=Path)
    v.set_defaults(func=cmd_validate)

    e = sub.add_parser("export", help="export runs as CSV or JSON, or one run as a FIT activity file")
    e.add_argument("--format", choices=("csv", "json", "fit"), default="csv")
    e.add_argument("--run", metavar="RUN_ID", help="the run to write as a FIT file (--format fit)")
    e.add_argument("--db", type=Path)
    e.add_argument("--config", type=Path)
    e.add_argument("--runner")
    e.add_argument("--out", type=Path, help="file to write (default: stdout; fit: footfall-<run id>.fit, - = stdout)")
    e.set_defaults(func=cmd_export)

    s = sub.add_parser("seed-history", help="write N weeks of simulated runs into the database (demo)")
    s.add_argument("--weeks", type=int, default=8)
    s.add_argument("--db", type=Path)
    s.add_argument("--config", type=Path)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--runner", default="alex")
    s.add_argument("--device-id", default="sim-1")
    s.add_argument(
        "--demo-alerts",
        action="store_true",
        help="inject a loading spike, fatigue drift and a fast forefoot transition, then run the rules",
    )
    s.set_defaults(func=cmd_seed)

    t = sub.add_parser("target", help="set, switch off or show a runner's in-run feedback target (retained MQTT)")
    targets.add_arguments(t)
    t.set_defaults(func=lambda a: targets.cmd_target(a, _config))
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "weeks", 1) is not None and getattr(args, "weeks", 1) < 1:
        print("footfall-dashboard: --weeks must be ≥ 1", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"footfall-dashboard: config error:\n{err}", file=sys.stderr)
        return 2
    except StoreError as err:
        print(f"footfall-dashboard: database error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
