"""footfall dashboard plugin: stores summaries, computes trends and risk, notifies, serves a dashboard."""

__version__ = "0.1.0"
