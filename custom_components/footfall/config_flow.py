"""Config flow: the dashboard's ``url`` and ``token``, checked live against the dashboard.

Steps: ``user`` (url + token), ``zeroconf`` → ``zeroconf_confirm`` (the dashboard announced itself over mDNS;
only the token is asked), ``reauth`` → ``reauth_confirm`` (the token was changed on the dashboard) and
``reconfigure`` (a new address). Every step validates by reading ``GET /api/summary`` with the token, and the
entry's unique id is the dashboard's instance id (a UUID kept in its database): the same dashboard at a new
address is recognised — its entry's URL is updated — and reauth/reconfigure refuse a different dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .api import FootfallAuthError, FootfallClient, FootfallConnectionError, normalize_url
from .const import CONF_TOKEN, CONF_URL, DOMAIN, LOGGER

TOKEN_FIELD = {vol.Optional(CONF_TOKEN): TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))}
USER_SCHEMA = vol.Schema({vol.Required(CONF_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
                          **TOKEN_FIELD})  # fmt: skip
TOKEN_SCHEMA = vol.Schema(TOKEN_FIELD)


def _title(url: str) -> str:
    return f"footfall ({urlsplit(url).netloc})"


class FootfallConfigFlow(ConfigFlow, domain=DOMAIN):
    VERSION = 1

    def __init__(self) -> None:
        self._url: str | None = None

    async def _check(self, url: str, token: str | None) -> tuple[str | None, dict[str, str]]:
        """(instance id, errors) — errors keyed ``base`` as the forms show them."""
        client = FootfallClient(async_get_clientsession(self.hass), url, token or None)
        try:
            summary = await client.summary()
        except FootfallAuthError:
            return None, {"base": "invalid_auth"}
        except FootfallConnectionError as err:
            LOGGER.debug("Cannot connect to %s: %s", url, err)
            return None, {"base": "cannot_connect"}
        except Exception:
            LOGGER.exception("Unexpected error checking %s", url)
            return None, {"base": "unknown"}
        return str(summary["instance"]["id"]), {}

    async def _check_url_and_token(self, user_input: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        """(entry data, errors) for the url + token form; on success the flow's unique id is the instance id."""
        token = user_input.get(CONF_TOKEN) or ""
        try:
            url = normalize_url(user_input[CONF_URL])
        except ValueError:
            return {}, {CONF_URL: "invalid_url"}
        instance, errors = await self._check(url, token)
        if instance is not None:
            await self.async_set_unique_id(instance)
        return {CONF_URL: url, CONF_TOKEN: token}, errors

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await self._check_url_and_token(user_input)
            if not errors:
                self._abort_if_unique_id_configured(updates=data)
                return self.async_create_entry(title=_title(data[CONF_URL]), data=data)
        return self.async_show_form(
            step_id="user", data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input), errors=errors
        )

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        instance = discovery_info.properties.get("id")
        if not instance:
            return self.async_abort(reason="not_footfall")
        host = discovery_info.host
        path = str(discovery_info.properties.get("path") or "/")
        self._url = normalize_url(f"http://{f'[{host}]' if ':' in host else host}:{discovery_info.port}{path}")
        await self.async_set_unique_id(str(instance))
        self._abort_if_unique_id_configured(updates={CONF_URL: self._url})
        self.context["title_placeholders"] = {"host": urlsplit(self._url).netloc}
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        assert self._url is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            token = user_input.get(CONF_TOKEN) or ""
            instance, errors = await self._check(self._url, token)
            if instance is not None:
                if instance != self.unique_id:
                    return self.async_abort(reason="wrong_dashboard")
                return self.async_create_entry(title=_title(self._url), data={CONF_URL: self._url, CONF_TOKEN: token})
        return self.async_show_form(
            step_id="zeroconf_confirm", data_schema=TOKEN_SCHEMA, errors=errors,
            description_placeholders={"url": self._url},
        )  # fmt: skip

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = user_input.get(CONF_TOKEN) or ""
            instance, errors = await self._check(entry.data[CONF_URL], token)
            if instance is not None:
                await self.async_set_unique_id(instance)
                self._abort_if_unique_id_mismatch(reason="wrong_dashboard")
                return self.async_update_reload_and_abort(entry, data_updates={CONF_TOKEN: token})
        return self.async_show_form(
            step_id="reauth_confirm", data_schema=TOKEN_SCHEMA, errors=errors,
            description_placeholders={"url": entry.data[CONF_URL]},
        )  # fmt: skip

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await self._check_url_and_token(user_input)
            if not errors:
                self._abort_if_unique_id_mismatch(reason="wrong_dashboard")
                return self.async_update_reload_and_abort(entry, title=_title(data[CONF_URL]), data_updates=data)
        suggested = user_input or {CONF_URL: entry.data[CONF_URL]}
        return self.async_show_form(
            step_id="reconfigure", data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, suggested),
            errors=errors,
        )  # fmt: skip
