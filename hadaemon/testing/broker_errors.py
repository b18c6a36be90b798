"""What goes wrong with a test broker, and a broker's refusal of a client."""

from __future__ import annotations

from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["BrokerError", "BrokerStartError", "BrokerUnsupported", "ConnectRefused", "PortInUse"]


class BrokerError(RuntimeError):
    """Something went wrong with a test broker."""


class BrokerStartError(BrokerError):
    """The broker did not come up; the message carries the tail of its log."""


class BrokerUnsupported(BrokerError):
    """The chosen implementation cannot do what was asked (tests should skip, not fail)."""


class PortInUse(BrokerStartError):
    """The port was taken; start() picks another itself unless the port was given."""


class ConnectRefused(ConnectionError):
    """The broker answered CONNECT with a failure CONNACK (bad credentials, not authorised)."""

    def __init__(self, reason_code: ReasonCode) -> None:
        super().__init__(f"broker refused the connection: {reason_code}")
        self.reason_code = reason_code

