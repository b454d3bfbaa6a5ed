"""``footfall-dashboard program …`` and ``footfall-dashboard shoes …``: the journey from the command line.

The command line works on the database alone: a program started here is published to the runner's agent by the
running dashboard (at its start, and after each of the runner's runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from plugin.program.assessment import AssessmentError
from plugin.program.journey import journey
from plugin.program.service import DEFAULT_GOAL_PCT, ProgramService
from plugin.program.shoes import compare_shoes
from plugin.store import StoreError


def add_program_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("start", "show", "change", "end"))
    p.add_argument("--runner", required=True)
    p.add_argument("--goals", help="the runner's goals, in their words")
    p.add_argument("--injury-note", help="injury history the runner wants the coach to know")
    p.add_argument(
        "--cadence-goal", type=float, metavar="PCT", help=f"cadence rise 5–10 %% (default {DEFAULT_GOAL_PCT})"
    )
    p.add_argument("--skip-transition", choices=("yes", "no"), help="skip the optional strike transition (stage 2)")
    p.add_argument("--json", action="store_true", help="show: the whole journey document as JSON")


def add_shoes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "tag", "untag", "retire"))
    p.add_argument("--runner", help="list/retire: whose pairs")
    p.add_argument("--run", metavar="RUN_ID", help="tag/untag: the run")
    p.add_argument("--shoe", help="tag/retire: the pair's name (tag creates it)")


def _fmt(v: Any, spec: str = ".0f", unit: str = "") -> str:
    return "–" if v is None else f"{v:{spec}}{unit}"


def cmd_program(args: argparse.Namespace, open_store: Callable[[argparse.Namespace], Any]) -> int:
    with open_store(args) as store:
        svc = ProgramService(store)
        try:
            if args.action == "start":
                doc = svc.start(
                    args.runner, goals=args.goals or "", injury_note=args.injury_note or "",
                    cadence_goal_pct=DEFAULT_GOAL_PCT if args.cadence_goal is None else args.cadence_goal,
                    skip_transition=args.skip_transition == "yes",
                )  # fmt: skip
            elif args.action == "change":
                fields: dict[str, Any] = {}
                if args.goals is not None:
                    fields["goals"] = args.goals
                if args.injury_note is not None:
                    fields["injury_note"] = args.injury_note
                if args.skip_transition is not None:
                    fields["skip_transition"] = args.skip_transition == "yes"
                changed = svc.change(args.runner, **fields)
                if changed is None:
                    print(f"{args.runner!r} has no program", file=sys.stderr)
                    return 1
                doc = changed
            elif args.action == "end":
                if not store.delete_program(args.runner):
                    print(f"{args.runner!r} has no program", file=sys.stderr)
                    return 1
                print(f"ended the program of {args.runner}")
                return 0
            else:
                shown = journey(store, args.runner, now=time.time())
                if shown is None:
                    print(f"{args.runner!r} has no program (start one: footfall-dashboard program start)")
                    return 1
                doc = shown
        except (AssessmentError, ValueError) as err:
            print(f"footfall-dashboard program: {err}", file=sys.stderr)
            return 2
    if getattr(args, "json", False):
        print(json.dumps(doc, indent=1, default=str, allow_nan=False))
        return 0
    t = doc["targets"]
    print(f"{doc['runner']}: stage {doc['stage']} — {doc['stage_title']} ({doc['progress_pct']:.0f} % of the program)")
    print(f"  this week: cadence {t['cadence_spm']:.0f} ± {t['cadence_band_spm']:.0f} spm (goal "
          f"{t['cadence_goal_spm']:.0f}), loading rate under {t['valr_ceiling_bw_s']:.0f} BW/s, "
          f"metronome {'on' if t['metronome'] else 'off'}")  # fmt: skip
    if doc["lock"]["reason"]:
        print(f"  stage 2: {doc['lock']['reason']}")
    for m in doc["messages"]:
        print(f"  ! {m['text']}")
    return 0


def cmd_shoes(args: argparse.Namespace, open_store: Callable[[argparse.Namespace], Any]) -> int:
    with open_store(args) as store:
        try:
            if args.action in ("tag", "untag"):
                if not args.run or (args.action == "tag" and not args.shoe):
                    print("footfall-dashboard shoes: tag needs --run and --shoe, untag --run", file=sys.stderr)
                    return 2
                run = store.run_row(args.run)
                if run is None or not run["runner"]:
                    print(f"run {args.run!r} not found (or it has no runner name)", file=sys.stderr)
                    return 1
                shoe_id = None
                if args.action == "tag":
                    shoe_id = store.shoe(run["runner"], args.shoe, create=True, at=run["started_at"])["shoe_id"]
                store.tag_run(args.run, shoe_id, source="cli")
                print(f"run {args.run}: {args.shoe if shoe_id else 'no pair'}")
                return 0
            if not args.runner:
                print(f"footfall-dashboard shoes {args.action}: give --runner", file=sys.stderr)
                return 2
            if args.action == "retire":
                shoe = store.shoe(args.runner, args.shoe or "")
                if shoe is None:
                    print(f"{args.runner} has no pair called {args.shoe!r}", file=sys.stderr)
                    return 1
                store.retire_shoe(shoe["shoe_id"])
                print(f"retired {args.shoe}")
                return 0
            rows = compare_shoes(store, args.runner)
        except (ValueError, StoreError) as err:
            print(f"footfall-dashboard shoes: {err}", file=sys.stderr)
            return 2
    print(f"{'pair':24} {'runs':>5} {'hours':>6} {'VALR':>7} {'cadence':>8} {'contact':>8} {'forefoot':>9}")
    for s in rows:
        d = s["change"] or {}
        print(f"{s['name'][:24]:24} {s['runs']:>5} {s['hours']:>6.1f} {_fmt(d.get('valr_pct'), '+.0f', ' %'):>7} "
              f"{_fmt(d.get('cadence_pct'), '+.1f', ' %'):>8} {_fmt(d.get('contact_pct'), '+.1f', ' %'):>8} "
              f"{_fmt(d.get('forefoot_points'), '+.0f', ' pt'):>9}")  # fmt: skip
    print("changes against your other runs at a similar cadence; hours = running time (no distance is measured)")
    return 0
