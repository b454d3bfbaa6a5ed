"""footfall edge agent: reads pressure insoles, measures every step, publishes MQTT summaries."""

__version__ = "0.1.0"
