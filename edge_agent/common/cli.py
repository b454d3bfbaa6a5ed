"""Command-line options both tools share: the broker and its password, kept out of the process list.

A password on the command line (``--broker mqtt://user:pass@…``) is readable by every local user in ``ps`` and
``/proc/<pid>/cmdline``, so ``--help`` shows the URL without one and offers a password file and the environment.
A URL that carries a password still works, with a warning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def add_broker_arguments(parser: argparse.ArgumentParser, *, env: str) -> None:
    """``--broker URL`` and ``--broker-password-file FILE``; ``env`` names the password's variable."""
    parser.add_argument(
        "--broker",
        metavar="mqtt[s]://[USER@]HOST:PORT",
        help=f"broker URL (overrides the config); give the password with --broker-password-file or {env}, "
        "not in the URL (the command line is visible in the process list)",
    )
    parser.add_argument(
        "--broker-password-file",
        type=Path,
        metavar="FILE",
        help="file whose first line is the broker password (e.g. a systemd or Docker credential)",
    )


def broker_overrides(args: argparse.Namespace, prog: str) -> dict[str, Any]:
    """The ``mqtt`` overrides from ``--broker`` / ``--broker-password-file`` (empty when neither is given)."""
    out: dict[str, Any] = {}
    url = getattr(args, "broker", None)
    if url:
        out["url"] = url
        try:
            has_password = urlsplit(url).password is not None
        except ValueError:
            has_password = False  # the config's validation names the problem
        if has_password:
            print(
                f"{prog}: warning: the --broker URL carries a password, which any local user can read in the "
                "process list; use --broker-password-file or the environment",
                file=sys.stderr,
            )
    if getattr(args, "broker_password_file", None) is not None:
        out["password_file"] = args.broker_password_file
    return out
