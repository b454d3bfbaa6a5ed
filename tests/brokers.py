"""Real MQTT brokers for tests (re-exported from :mod:`edge_agent.broker`, which the demo uses too)."""

from edge_agent.broker import AmqttBroker, MosquittoBroker, free_port, have_mosquitto, make_broker, wait_port

__all__ = ["AmqttBroker", "MosquittoBroker", "free_port", "have_mosquitto", "make_broker", "wait_port"]
