"""hadaemon's own test fixtures (brokers, child processes) are a public pytest plugin."""

from hypothesis import HealthCheck, settings

pytest_plugins = ["hadaemon.testing.fixtures"]

# No property test has a time limit: speed is a benchmark's business, and a loaded CI
# machine must not fail a correct example for being slow (tests' own settings still apply).
settings.register_profile("hadaemon", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hadaemon")
