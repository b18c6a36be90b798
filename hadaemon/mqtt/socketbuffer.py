"""The socket paho reads through: a read buffer, and the packets we decode ourselves.

paho reads a packet with three ``recv`` calls (command byte, length, body); a 64 KiB read
buffer serves those from memory and lets one reactor wake-up handle every packet that
arrived, which roughly doubles ingest throughput. Between paho's packets,
:class:`~hadaemon.mqtt.transport.PahoSession` takes a plain QoS 0 PUBLISH
(:meth:`_BufferedSocket.take_publish`) and the PUBACK of a PUBLISH it framed
(:meth:`_BufferedSocket.take_puback`) from the buffer itself; paho reads everything else.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

_READ_SIZE = 65536

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _BufferedSocket:
    """A socket whose ``recv`` is served from a read buffer (paho reads tiny pieces).

    With ``quickack`` every read re-arms TCP_QUICKACK (Linux resets it): our ACKs then
    leave at once instead of up to 40 ms later, so a broker with Nagle on (mosquitto's
    default) never holds its next message waiting for them.

    It also notes how the stream ended (``eof``, or the ``error`` a read or write
    raised), which paho reduces to "Unspecified error".
    """

    def __init__(self, sock: Any, quickack: bool = False) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.eof = False
        self.error: OSError | None = None
        self._quickack = quickack and _QUICKACK is not None

    def recv(self, bufsize: int) -> bytes:
        if not self._buffer:
            if self.eof:
                return b""
            try:
                data = self._sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # nothing to read yet: not an error
            except OSError as exc:
                self.error = exc
                raise
            if not data:
                self.eof = True
                self._eof = True
                return b""
            if self._quickack:
                try:
                    self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                except OSError:
                    self._quickack = False
            self._buffer += data
        chunk = bytes(self._buffer[:bufsize])
        del self._buffer[:bufsize]
        return chunk

    def take_publish(self, mqtt5: bool) -> tuple[str, bytes, bool] | None:
        """The next buffered packet if it is a whole, plain QoS 0 PUBLISH (topic, payload,
        retain), consumed; else None and nothing consumed (paho reads it).

        paho spends ~12 us on each PUBLISH it reads (three ``recv``s, a decode, an
        MQTTMessage, its topic-filter callbacks under two locks); this takes ~1 us.
        ``benchmarks/zigbee.py`` ingest on stock mosquitto, CPU per message, runs with
        and without it taking turns: 33 against 50 us (a loaded machine; docs/mqtt.md,
        "Measured", has before/after runs: 39 -> 25-28 us).
        Anything else (QoS 1, MQTT 5 properties, a packet not yet complete, a topic that
        is not UTF-8) is left to paho, unchanged.
        """
        if not self._buffer and not self._fill():
            return None
        data = self._buffer
        end_of_data = len(data)
        if end_of_data < 4 or data[0] not in (0x30, 0x31):
            return None
        length, shift, i = 0, 0, 1
        while True:
            if i >= end_of_data or shift > 21:
                return None
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        end = i + length
        if end > end_of_data or length < 2:
            return None  # incomplete (or malformed: paho reports it)
        topic_end = i + 2 + ((data[i] << 8) | data[i + 1])
        if topic_end > end:
            return None
        start = topic_end
        if mqtt5:
            if topic_end == end or data[topic_end] != 0:
                return None  # properties: paho decodes them
            start += 1
        try:
            topic = data[i + 2:topic_end].decode()
        except UnicodeDecodeError:
            return None
        retain = data[0] == 0x31
        payload = bytes(data[start:end])
        del data[:end]
        return topic, payload, retain

    def _fill(self) -> bool:
        """Read into the empty buffer, consuming nothing; False if nothing came."""
        try:
            self.recv(0)
        except OSError:
            return False  # paho's own recv meets it again and handles it
        return bool(self._buffer)

    def take_puback(self, mids: dict[int, None]) -> int | None:
        """The next buffered packet if it is a whole PUBACK of one of ``mids``, consumed:
        its packet id; else None and nothing consumed (paho reads it). An MQTT 5 reason
        code counts as an acknowledgement, as paho's own PUBACK handling does here."""
        if not self._buffer and not self._fill():
            return None
        data = self._buffer
        if len(data) < 4 or data[0] != 0x40 or data[1] > 0x7F or data[1] < 2:
            return None
        end = 2 + data[1]
        if end > len(data):
            return None
        mid = (data[2] << 8) | data[3]
        if mid not in mids:
            return None
        del data[:end]
        return mid

    def send(self, data: bytes | bytearray) -> int:
        try:
            sent: int = self._sock.send(data)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except OSError as exc:
            self.error = exc
            raise
        return sent

    def buffered(self) -> int:
        """Bytes already read but not consumed (here, or inside the TLS layer)."""
        pending = len(self._buffer)
        if isinstance(self._sock, ssl.SSLSocket):
            pending += self._sock.pending()
        return pending

    def pending(self) -> int:
        return self.buffered()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


__all__ = ["_BufferedSocket"]
