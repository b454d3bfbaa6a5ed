"""``footfall-dashboard``: run the plugin, validate a config, export runs, seed a demo history, manage club
accounts and teams, copy a store into another database.

``--db`` takes a SQLite file or a ``postgresql://`` URL (a password belongs in PGPASSWORD or ~/.pgpass, not on
the command line, where ``ps`` shows it).

Exit codes: 0 ok, 2 bad config or arguments (the message names the key and the line), 1 runtime failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from edge_agent.common.cli import add_broker_arguments, broker_overrides
from plugin import __version__, targets
from plugin.config import ConfigError, DashboardConfig, load_config
from plugin.store import AccountError, StoreError
from plugin.store.backend import describe_target, is_postgres_url


def _config(args: argparse.Namespace) -> DashboardConfig:
    overrides: dict[str, Any] = {}
    mqtt = broker_overrides(args, "footfall-dashboard")
    if mqtt:
        overrides["mqtt"] = mqtt
    if getattr(args, "db", None):
        if is_postgres_url(args.db):
            overrides["database"] = args.db
        else:
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


def _target(args: argparse.Namespace, *, must_exist: bool = False) -> Path | str:
    """The store ``--db`` names (a path or a postgresql:// URL), else the config's."""
    target: Path | str = args.db if args.db else _config(args).store_target
    if not is_postgres_url(target):
        target = Path(target)
        if must_exist and not target.exists():
            raise ConfigError(f"{target}: no such database")
    return target


def cmd_export(args: argparse.Namespace) -> int:
    from plugin.store import Store

    if (args.format == "fit") != (args.run is not None):
        print("footfall-dashboard export: --format fit needs --run RUN_ID (and --run is only for fit)", file=sys.stderr)
        return 2
    db = _target(args, must_exist=True)
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


def _export_fit(db: Path | str, run_id: str, out: Path | None) -> int:
    """One run as a FIT activity file: ``--out FILE``, ``--out -`` (stdout) or ``footfall-<run id>.fit`` here."""
    from edge_agent.common.fitfile import FitExportError
    from plugin.fit_export import export_run_fit
    from plugin.store import Store

    if str(out) == "-" and sys.stdout.isatty():
        print("footfall-dashboard export: a FIT file is binary: give --out FILE or redirect stdout", file=sys.stderr)
        return 2
    problem = f"no run {run_id!r} in {describe_target(db)}"
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

    db = _target(args)
    scenario = Scenario()
    weeks = args.weeks
    if args.demo_alerts:
        scenario = Scenario(spike=(4 * weeks - 2, 12, 2, 1.6), fatigue_runs=(4 * weeks - 4,),
                            forefoot_transition=(max(1, weeks - 4), weeks - 1, 0.6))  # fmt: skip
    if args.program:
        if not 8 <= weeks <= 12:
            raise ConfigError(f"seed-history --program: --weeks must be 8–12, not {weeks}")
        scenario = program_scenario(weeks)
    kwargs: dict[str, Any] = {"weeks": weeks, "seed": args.seed, "scenario": scenario,
                              "runner": RunnerModel(name=args.runner, device_id=args.device_id)}  # fmt: skip
    with Store(db) as store:
        if args.demo_alerts or args.program:  # message by message through the rules, as the live service does
            n = _seed_live(store, kwargs, program_week=PROGRAM_WEEK if args.program else None)
        else:
            n = seed_history(store, **kwargs)
        counts = store.counts()
    w = describe_target(db)
    stats = f"{counts['runs']} runs, {counts['windows']} windows, {counts['alerts']} alerts"
    print(f"seeded {w}: {n} messages, {stats}")
    return 0


#: The simulated runner starts the program after 4 weeks of running as usual (its assessment).
PROGRAM_WEEK = 4


def program_scenario(weeks: int) -> Any:
    """A runner following the program: cadence +7.5 % over 3 weeks (VALR falling with it), then a slow midfoot
    transition, and a new pair of shoes two weeks before the end whose first runs land further forward and load
    faster (the shoe alert)."""
    from plugin.history import Scenario

    new_pair_run = 4 * (weeks - 2)  # 4 runs a week: the first run of the second-last week
    return Scenario(program=(PROGRAM_WEEK, 0.075, 3), forefoot_transition=(PROGRAM_WEEK + 3, weeks + 4, 0.35),
                    shoe_change=(new_pair_run, "Daily trainer", "Carbon racer", 1.35, 0.2))  # fmt: skip


def _seed_live(store: Any, kwargs: dict[str, Any], *, program_week: int | None) -> int:
    from edge_agent.contract import RunSummary, WindowSummary
    from plugin.history import WEEK, generate_history, history_start
    from plugin.program import ProgramService
    from plugin.risk import RiskEngine

    engine = RiskEngine(store)
    clock = [0.0]
    program = ProgramService(store, clock=lambda: clock[0])
    runner = kwargs["runner"].name
    end = kwargs.setdefault("end", time.time())
    start = history_start(weeks=kwargs["weeks"], end=end) + (program_week or 0) * WEEK
    started = program_week is None
    n = 0
    for msg in generate_history(**kwargs):
        clock[0] = msg.t_end if isinstance(msg, WindowSummary) else msg.ended_at
        if not started and clock[0] >= start:
            clock[0] = start
            program.start(runner, at=start, goals="A half marathon in spring, without knee pain",
                          injury_note="Runner's knee (patellofemoral pain) two years ago; fine since.")  # fmt: skip
            started = True
        if store.insert_message(msg):
            n += 1
            engine.on_summary(msg) if isinstance(msg, WindowSummary) else engine.on_run(msg)
            if isinstance(msg, RunSummary):
                program.on_run(msg)
    return n


def cmd_users(args: argparse.Namespace) -> int:
    from plugin.store import Store

    if args.action not in ("list", "tokens") and not args.name:
        raise AccountError(f"users {args.action}: name the user")
    with Store(_target(args)) as store:
        if args.action == "add":
            password = _password(args) if args.password_file or args.password_stdin else None
            store.add_user(args.name, args.role, password=password, runner=args.runner)
            print(f"user {args.name} ({args.role}{', runner ' + args.runner if args.runner else ''}) added"
                  f"{'' if password else '; no password yet: `users passwd` or `users token`'}")  # fmt: skip
        elif args.action == "passwd":
            store.set_password(args.name, _password(args))
            print(f"password of {args.name} changed; their logins ended")
        elif args.action == "delete":
            store.delete_user(args.name)
            print(f"user {args.name} deleted")
        elif args.action == "token":
            token = store.create_token(args.name, args.label)
            print(f"API token for {args.name} (shown once, store it now):\n{token}")
        elif args.action == "tokens":
            for t in store.tokens(args.name):
                print(f"{t['id']}  {t['username']:<20} {t['label']:<20} created {_when(t['created_at'])}"
                      f"  last used {_when(t['last_used_at'])}")  # fmt: skip
        elif args.action == "revoke":
            n = store.revoke_token(args.name)
            print(f"{n} token(s) revoked")
            if not n:
                return 1
        else:
            for u in store.users():
                who = f"runner {u['runner']}" if u["role"] == "runner" else ", ".join(u["teams"]) or "-"
                print(f"{u['username']:<24} {u['role']:<7} {who}{'' if u['has_password'] else '  (no password)'}")
    return 0


def cmd_teams(args: argparse.Namespace) -> int:
    from plugin.store import Store

    if args.action != "list" and not args.team:
        raise AccountError(f"teams {args.action}: name the team")
    with Store(_target(args)) as store:
        if args.action == "add":
            store.add_team(args.team)
            if args.runners:
                store.set_team_members(args.team, args.runners)
            print(f"team {args.team}: {len(args.runners or [])} runner(s) added")
        elif args.action == "delete":
            store.delete_team(args.team)
            print(f"team {args.team} deleted")
        elif args.action in ("add-runners", "remove-runners"):
            store.set_team_members(args.team, args.runners or [], add=args.action == "add-runners")
            print(f"team {args.team}: {len(args.runners or [])} runner(s) {args.action.split('-')[0]}ed")
        elif args.action in ("add-coach", "remove-coach"):
            for name in args.runners or []:
                store.set_team_coach(args.team, name, add=args.action == "add-coach")
            print(f"team {args.team}: coach(es) {', '.join(args.runners or [])} {args.action.split('-')[0]}ed")
        else:
            for t in store.teams():
                print(f"{t['name']}: coaches {', '.join(t['coaches']) or '-'}; {len(t['runners'])} runner(s): "
                      f"{', '.join(t['runners'])}")  # fmt: skip
    return 0


def cmd_migrate_store(args: argparse.Namespace) -> int:
    from plugin.store import Store
    from plugin.store.copy import copy_store

    source_target = args.source if is_postgres_url(args.source) else Path(args.source.removeprefix("sqlite:"))
    if isinstance(source_target, Path) and not source_target.exists():
        raise ConfigError(f"{source_target}: no such database")
    with Store(source_target) as source, Store(args.target) as target:
        print(f"copying {source.where} → {target.where}", flush=True)
        reports = copy_store(source, target)
    width = max(len(r.table) for r in reports)
    bad = [r for r in reports if not r.ok]
    for r in reports:
        mark = "ok" if r.ok else "MISMATCH"
        print(f"  {r.table:<{width}}  {r.source_rows:>9} → {r.target_rows:>9}  sha256-sum {r.target_sum[:16]}  {mark}")
    if bad:
        print(f"migrate-store: {len(bad)} table(s) differ: {', '.join(r.table for r in bad)}", file=sys.stderr)
        return 1
    print(f"verified: {sum(r.source_rows for r in reports)} rows in {len(reports)} tables, counts and checksums equal")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def _when(t: float | None) -> str:
    if t is None:
        return "never"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _open_store(args: argparse.Namespace) -> Any:
    from plugin.store import Store

    return Store(_target(args))


def _database_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="SQLite file or postgresql:// URL (default: the config's)")
    p.add_argument("--config", type=Path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall-dashboard", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"footfall-dashboard {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run ingest, risk engine, notifications and the web dashboard")
    r.add_argument("--config", type=Path, help="YAML config file")
    add_broker_arguments(r, env="FOOTFALL_DASHBOARD_MQTT__PASSWORD")
    r.add_argument("--db", help="SQLite database file, or postgresql://user@host/db (password: PGPASSWORD)")
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
    e.add_argument("--db", help="SQLite file or postgresql:// URL")
    e.add_argument("--config", type=Path)
    e.add_argument("--runner")
    e.add_argument("--out", type=Path, help="file to write (default: stdout; fit: footfall-<run id>.fit, - = stdout)")
    e.set_defaults(func=cmd_export)

    s = sub.add_parser("seed-history", help="write N weeks of simulated runs into the database (demo)")
    s.add_argument("--weeks", type=int, default=8)
    s.add_argument("--db", help="SQLite file or postgresql:// URL")
    s.add_argument("--config", type=Path)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--runner", default="alex")
    s.add_argument("--device-id", default="sim-1")
    s.add_argument(
        "--demo-alerts",
        action="store_true",
        help="inject a loading spike, fatigue drift and a fast forefoot transition, then run the rules",
    )
    s.add_argument(
        "--program",
        action="store_true",
        help="a runner following the retraining program from 4 weeks in (cadence up, loading down, a slow strike "
        "transition) with a change of shoes that loads faster, run through the rules and the program (8–12 weeks)",
    )
    s.set_defaults(func=cmd_seed)

    u = sub.add_parser("users", help="club accounts: admin, coach (their teams), runner (themself)")
    u.add_argument("action", choices=("list", "add", "passwd", "delete", "token", "tokens", "revoke"))
    u.add_argument("name", nargs="?", help="user name (revoke: the token id `tokens` lists)")
    u.add_argument("--role", choices=("admin", "coach", "runner"), default="runner")
    u.add_argument("--runner", help="for --role runner: the runner name their insoles report")
    u.add_argument("--label", default="api", help="token: what it is for (e.g. home-assistant)")
    u.add_argument("--password-file", help="read the password from the first line of this file")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _database_args(u)
    u.set_defaults(func=cmd_users)

    t = sub.add_parser("teams", help="teams of runners and their coaches")
    t.add_argument("action", choices=("list", "add", "delete", "add-runners", "remove-runners", "add-coach",
                                      "remove-coach"))  # fmt: skip
    t.add_argument("team", nargs="?")
    t.add_argument("runners", nargs="*", help="runner names (add-coach/remove-coach: user names)")
    _database_args(t)
    t.set_defaults(func=cmd_teams)

    m = sub.add_parser("migrate-store", help="copy a store into an empty database, verified by counts and checksums")
    m.add_argument("--from", dest="source", required=True, help="sqlite:/path/to/footfall-dashboard.db (or a URL)")
    m.add_argument("--to", dest="target", required=True, help="postgresql://user@host/db (or sqlite:/path)")
    m.set_defaults(func=cmd_migrate_store)
    t = sub.add_parser("target", help="set, switch off or show a runner's in-run feedback target (retained MQTT)")
    targets.add_arguments(t)
    t.set_defaults(func=lambda a: targets.cmd_target(a, _config))

    from plugin.program import cli as program_cli

    pr = sub.add_parser("program", help="a runner's retraining program: start, show, change, end (docs/program.md)")
    program_cli.add_program_arguments(pr)
    _database_args(pr)
    pr.set_defaults(func=lambda a: program_cli.cmd_program(a, _open_store))

    sh = sub.add_parser("shoes", help="a runner's shoes: list with per-pair comparison, tag or untag a run, retire")
    program_cli.add_shoes_arguments(sh)
    _database_args(sh)
    sh.set_defaults(func=lambda a: program_cli.cmd_shoes(a, _open_store))
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
    except AccountError as err:
        print(f"footfall-dashboard: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
