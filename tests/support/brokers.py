"""Real MQTT brokers for tests (re-exported from :mod:`edge_agent.tools.broker`, which the demo uses too),
and a helper that turns a test Mosquitto into a locked-down one (passwords, TLS)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from edge_agent.tools.broker import AmqttBroker, MosquittoBroker, free_port, have_mosquitto, make_broker, wait_port

__all__ = [
    "SHIPPED_ACL",
    "AmqttBroker",
    "MosquittoBroker",
    "free_port",
    "harden",
    "have_mosquitto",
    "make_broker",
    "make_certs",
    "wait_port",
]


#: The ACL the Docker kit ships (docs/security.md).
SHIPPED_ACL = Path(__file__).resolve().parents[2] / "docker" / "mosquitto" / "acl"


def harden(
    b: MosquittoBroker, d: Path, *, users: dict[str, str] | None = None, tls: bool = False, acl: Path | None = None
) -> Path | None:
    """Before ``b.start()``: refuse anonymous clients and accept ``users`` (name → password), and/or
    serve TLS only with a private CA made in ``d``, and/or enforce the ACL file ``acl`` (e.g.
    :data:`SHIPPED_ACL`). Returns that CA's certificate (None without TLS)."""
    conf = b.conf.read_text()
    if acl is not None:
        conf += f"acl_file {acl}\n"
    if users:
        pw = d / "passwd"
        for i, (name, password) in enumerate(users.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run(
                ["mosquitto_passwd", "-b", *create, str(pw), name, password], check=True, capture_output=True
            )
        pw.chmod(0o600)
        conf = conf.replace("allow_anonymous true", f"allow_anonymous false\npassword_file {pw}")
    ca = None
    if tls:
        ca, crt, key = make_certs(d)
        lines = conf.splitlines()
        lines.insert(1, f"cafile {ca}\ncertfile {crt}\nkeyfile {key}")  # options of the listener on line 1
        conf = "\n".join(lines) + "\n"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # started as root, Mosquitto drops to user ``mosquitto``, which cannot read pytest's private
        # tmp dir (password file, TLS key); stay root for these private test brokers
        conf += "user root\n"
    b.conf.write_text(conf)
    return ca


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1/localhost (openssl)."""
    ca_key, ca, key, csr, crt = (d / n for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=footfall test CA",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(crt),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, crt, key
