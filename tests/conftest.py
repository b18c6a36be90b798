"""hadaemon's own test fixtures (brokers, child processes) are a public pytest plugin."""

pytest_plugins = ["hadaemon.testing.fixtures"]
