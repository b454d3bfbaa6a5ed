"""Announce the web dashboard on the local network over mDNS/DNS-SD (``_footfall._tcp.local.``).

Home Assistant's zeroconf discovery finds the dashboard by this service type (custom_components/footfall
lists it in its manifest) and offers to set up the integration; any DNS-SD browser shows it too
(``avahi-browse -r _footfall._tcp``). Built on python-zeroconf, the library Home Assistant itself uses.

When (``mdns:`` in the config, docs/config-reference.md):

- ``auto`` (default): announce when the dashboard listens beyond loopback — only then can another machine
  reach it; a loopback dashboard stays silent.
- ``on``: announce; refused for a loopback listen address (nothing else could connect to it).
- ``off``: never.

Where: on the interface of the listen address and with that address (``listen: 192.168.1.5:8765``), or on
every interface with each interface's own addresses for a wildcard listen (``0.0.0.0`` IPv4, ``::`` both).
The TXT record carries only public facts: the dashboard's instance id (a random UUID kept in its database, so
Home Assistant recognises the same dashboard at a new address), its version, the URL path and whether it
asks for a token — never the token.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Literal

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from plugin import __version__
from plugin.config import ConfigError, is_loopback

log = logging.getLogger(__name__)

SERVICE_TYPE = "_footfall._tcp.local."
MdnsMode = Literal["auto", "on", "off"]


def should_announce(mode: MdnsMode, listen_host: str) -> bool:
    """``auto``: only beyond loopback; ``on``: always (the config refuses ``on`` with a loopback address)."""
    return mode == "on" or (mode == "auto" and not is_loopback(listen_host))


def _wildcard(host: str) -> IPVersion | None:
    return {"0.0.0.0": IPVersion.V4Only, "::": IPVersion.All, "": IPVersion.All}.get(host)


def _host_addresses(version: IPVersion) -> list[str]:
    """Every non-loopback, non-link-local address of this machine (IPv4, and IPv6 unless V4Only)."""
    out: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            addr = ipaddress.ip_address(raw)
            if addr.is_loopback or addr.is_link_local or (addr.version == 6 and version == IPVersion.V4Only):
                continue
            out.append(str(addr))
    return out


def announce_addresses(listen_host: str) -> tuple[list[str], IPVersion, list[str] | InterfaceChoice]:
    """(addresses to announce, IP versions, interfaces to announce on) for a listen host."""
    host = listen_host.strip("[]")
    version = _wildcard(host)
    if version is not None:
        return _host_addresses(version), version, InterfaceChoice.All
    try:
        addrs = [str(ipaddress.ip_address(host))]
    except ValueError:  # a host name: the addresses it resolves to here
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        addrs = sorted({str(info[4][0]) for info in infos})
    versions = {ipaddress.ip_address(a).version for a in addrs}
    ipv = IPVersion.All if versions == {4, 6} else (IPVersion.V6Only if versions == {6} else IPVersion.V4Only)
    return addrs, ipv, addrs


class MdnsAnnouncer:
    """Registers the dashboard's service while it runs: ``await start()`` … ``await stop()`` (sends goodbyes)."""

    def __init__(self, *, listen_host: str, port: int, instance_id: str, token_required: bool) -> None:
        self.listen_host = listen_host
        self.port = port
        self.instance_id = instance_id
        self.token_required = token_required
        self._zc: AsyncZeroconf | None = None
        self.info: ServiceInfo | None = None

    def service_info(self) -> ServiceInfo:
        addresses, _, _ = announce_addresses(self.listen_host)
        if not addresses:
            raise ConfigError(f"mdns: no address to announce for listen host {self.listen_host!r}")
        short = self.instance_id[:8]
        host = socket.gethostname().split(".")[0] or "footfall"
        return ServiceInfo(
            SERVICE_TYPE,
            f"footfall dashboard on {host} ({short}).{SERVICE_TYPE}",
            port=self.port,
            parsed_addresses=addresses,
            server=f"footfall-{short}.local.",
            properties={
                "id": self.instance_id,
                "version": __version__,
                "path": "/",
                "auth": "token" if self.token_required else "none",
            },
        )

    async def start(self) -> None:
        info = self.service_info()
        _, ip_version, interfaces = announce_addresses(self.listen_host)
        self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=ip_version)
        await self._zc.async_register_service(info, allow_name_change=True)
        self.info = info
        log.info("mDNS: announcing %s on %s port %d", info.name, ", ".join(info.parsed_addresses()), self.port)

    async def stop(self) -> None:
        if self._zc is None:
            return
        try:
            if self.info is not None:
                await self._zc.async_unregister_service(self.info)
        finally:
            await self._zc.async_close()
            self._zc = None
