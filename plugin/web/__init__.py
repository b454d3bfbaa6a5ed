"""The footfall dashboard web app: JSON API, HTML pages, live updates over SSE."""

from plugin.web.app import create_app
from plugin.web.auth import ConfigError
from plugin.web.context import DashboardContext, SettingSpec

__all__ = ["ConfigError", "DashboardContext", "SettingSpec", "create_app"]
