"""hadaemon's own test fixtures (brokers, child processes) are a public pytest plugin."""

import signal

from hypothesis import HealthCheck, settings

pytest_plugins = ["hadaemon.testing.fixtures"]

# No property test has a time limit: speed is a benchmark's business, and a loaded CI
# machine must not fail a correct example for being slow (tests' own settings still apply).
settings.register_profile("hadaemon", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hadaemon")

# A suite started in the background by a non-interactive shell has SIGINT ignored, and
# every child would inherit that: the tests of what Ctrl+C does would hang. Children get
# Python's default instead, as when the suite is started from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
