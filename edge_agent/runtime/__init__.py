"""The headless agent at run time: ``agent`` (composition root), ``pipeline`` (frames → steps → windows → runs),
``activity`` (run detection), ``outbox`` (durable queue), ``mqtt`` (broker connection and the outbox publisher)
and ``ha_discovery`` (Home Assistant device discovery)."""
