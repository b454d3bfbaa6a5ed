"""Infrastructure both sides share, with nothing heavier than pydantic, PyYAML and paho-mqtt: configuration
basics (``config``: strict models, bounded YAML with line numbers, redacted errors), the MQTT connection
(``mqtt``) and Home Assistant discovery documents (``ha_discovery``). The dashboard plugin imports this package
and ``edge_agent.contract``, never the agent's runtime or kernels."""
