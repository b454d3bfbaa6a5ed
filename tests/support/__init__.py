"""Helpers the tests share: real brokers, the test acker, polling, seeded stores, the in-process agent."""
