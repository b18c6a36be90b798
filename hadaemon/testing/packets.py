"""MQTT packets as bytes, for tests and benchmarks that write the wire themselves (a raw
publisher no client library slows down, a reader's input cut at chosen places)."""

from __future__ import annotations

__all__ = ["connect_packet", "mqtt_packet", "publish_packet", "remaining_length"]


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length integer (1 to 4 bytes)."""
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_packet(first: int, body: bytes) -> bytes:
    """A packet: its first byte (type and flags), the remaining length, the body."""
    return bytes([first]) + remaining_length(len(body)) + body


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def publish_packet(topic: str | bytes, payload: bytes, *, first: int = 0x30,
                   mid: bytes = b"", properties: bytes | None = None) -> bytes:
    """A PUBLISH: ``first`` 0x30 is QoS 0 (| 0x01 retain, 0x32 QoS 1, which needs a
    two-byte ``mid``); ``properties`` (MQTT 5) starts with its own length."""
    name = topic.encode() if isinstance(topic, str) else topic
    return mqtt_packet(first, _string(name) + mid + (properties or b"") + payload)


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session and no credentials."""
    header = _string(b"MQTT") + bytes([4, 0x02]) + keepalive.to_bytes(2, "big")
    return mqtt_packet(0x10, header + _string(client_id.encode()))
