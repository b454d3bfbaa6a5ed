"""Tooling around the agent: ``demo`` (``footfall demo``) and ``broker`` (the embedded MQTT broker it uses)."""
