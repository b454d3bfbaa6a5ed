"""Config flow against a real footfall dashboard: user step, errors, zeroconf, reauth, reconfigure."""

from __future__ import annotations

from ipaddress import ip_address

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from tests.ha.common import Dashboard, free_port, setup_entry

DOMAIN = "footfall"


def zeroconf_info(dashboard: Dashboard, instance_id: str | None = None, port: int | None = None) -> ZeroconfServiceInfo:
    """What Home Assistant's zeroconf integration hands over for the dashboard's announcement (plugin/mdns.py)."""
    properties = {"version": "0.1.0", "path": "/", "auth": "token"}
    if instance_id != "":
        properties["id"] = instance_id or dashboard.instance_id
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"), ip_addresses=[ip_address("127.0.0.1")], port=port or dashboard.port,
        hostname="footfall-1234abcd.local.", type="_footfall._tcp.local.",
        name="footfall dashboard on host (1234abcd)._footfall._tcp.local.", properties=properties,
    )  # fmt: skip


async def test_user_step_creates_an_entry_keyed_by_the_dashboards_instance(
    hass: HomeAssistant, dashboard: Dashboard
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "user" and not result["errors"]
    assert {str(k) for k in result["data_schema"].schema} == {"url", "token"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": f"{dashboard.netloc}/", "token": dashboard.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"url": dashboard.url, "token": dashboard.token}
    assert result["title"] == f"footfall ({dashboard.netloc})"
    entry = result["result"]
    assert entry.unique_id == dashboard.instance_id
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_bad_token_then_the_right_one(hass: HomeAssistant, dashboard: Dashboard) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": dashboard.url, "token": "not-the-dashboards-token"}
    )
    assert result["type"] is FlowResultType.FORM and result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"url": dashboard.url})
    assert result["errors"] == {"base": "invalid_auth"}  # no token at all is refused too
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": dashboard.url, "token": dashboard.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_unreachable_and_malformed_urls(hass: HomeAssistant, dashboard: Dashboard) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    nobody = f"http://127.0.0.1:{free_port()}"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"url": nobody, "token": "x" * 20})
    assert result["type"] is FlowResultType.FORM and result["errors"] == {"base": "cannot_connect"}
    for bad in ("ftp://127.0.0.1:21", "http://user:pw@127.0.0.1:80", "http://127.0.0.1:99999"):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {"url": bad, "token": "x"})
        assert result["errors"] == {"url": "invalid_url"}, bad
    # A web server that is not a footfall dashboard: Home Assistant's own HTTP API would answer 404 JSON; the
    # dashboard's static page path answers HTML — either way, not a summary.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": f"{dashboard.url}/static", "token": dashboard.token}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_same_dashboard_twice_aborts_and_updates_the_address(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    hass.config_entries.async_update_entry(entry, data={**entry.data, "url": "http://127.0.0.1:1"})
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": dashboard.url, "token": dashboard.token}
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "already_configured"
    assert entry.data["url"] == dashboard.url


async def test_zeroconf_discovery_asks_only_for_the_token(hass: HomeAssistant, dashboard: Dashboard) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=zeroconf_info(dashboard)
    )
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"url": dashboard.url}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"token": "wrong-token-wrong-token"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"token": dashboard.token})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"url": dashboard.url, "token": dashboard.token}
    assert result["result"].unique_id == dashboard.instance_id


async def test_zeroconf_for_a_known_dashboard_updates_its_address(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    moved = free_port()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=zeroconf_info(dashboard, port=moved)
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "already_configured"
    assert entry.data["url"] == f"http://127.0.0.1:{moved}"


async def test_zeroconf_of_something_else_or_another_dashboard(hass: HomeAssistant, dashboard: Dashboard) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=zeroconf_info(dashboard, instance_id="")
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "not_footfall"
    # Announced with one identity, but the address serves another dashboard: refused, not mixed up.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=zeroconf_info(dashboard, instance_id="f" * 32)
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"token": dashboard.token})
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_dashboard"


async def test_token_changed_on_the_dashboard_starts_reauth(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    assert entry.state is ConfigEntryState.LOADED
    dashboard.stop()
    dashboard.start(token="the-new-token-after-a-rotation")
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    [flow] = flows
    assert flow["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {"token": "still-the-old-one-123"})
    assert result["type"] is FlowResultType.FORM and result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {"token": dashboard.token})
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data["token"] == "the-new-token-after-a-rotation"
    assert entry.state is ConfigEntryState.LOADED


async def test_setup_with_a_refused_token_starts_reauth(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard, token="an-outdated-token-0000")
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert [f["context"]["source"] for f in hass.config_entries.flow.async_progress_by_handler(DOMAIN)] == ["reauth"]


async def test_reconfigure_to_a_new_address(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "reconfigure"
    dashboard.stop()
    dashboard.port = free_port()
    dashboard.start()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": dashboard.url, "token": dashboard.token}
    )
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["url"] == dashboard.url and entry.state is ConfigEntryState.LOADED
