"""Reading from the broker: the QoS 0 PUBLISH shortcut and paho's reader, mixed in one
stream, deliver every message whole and in order (within its QoS, as MQTT orders)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hadaemon.mqtt import Message
from hadaemon.mqtt.transport import _BufferedSocket
from hadaemon.testing import BlockingClient, Broker, run_in_reactor, wait_until
from hadaemon.testing.packets import publish_packet

from .util import connection


def _publish(topic: bytes, payload: bytes, first: int = 0x30, props: bytes | None = None,
             mid: bytes = b"") -> bytes:
    return publish_packet(topic, payload, first=first, mid=mid, properties=props)


class _Spy:
    """Counts the packets the shortcut took (so a test knows it ran)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = 0
        original = _BufferedSocket.take_publish

        def take(sock: _BufferedSocket, mqtt5: bool) -> Any:
            result = original(sock, mqtt5)
            self.taken += result is not None
            return result

        monkeypatch.setattr(_BufferedSocket, "take_publish", take)


def _buffered(data: bytes) -> _BufferedSocket:
    """A buffered socket holding ``data`` (read through a real socket pair)."""
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    theirs.close()
    return _BufferedSocket(ours)


def test_take_publish_takes_only_whole_plain_qos0_publishes() -> None:
    ours, theirs = socket.socketpair()
    sock = _BufferedSocket(ours)
    ours.setblocking(False)
    assert sock.take_publish(False) is None  # nothing to read: paho meets it too
    assert sock.buffered() == 0
    ours.close()
    theirs.close()

    big = bytes(range(256)) * 80  # a 3-byte remaining length
    qos1 = _publish(b"a/q1", b"one", first=0x32, mid=b"\x00\x07")
    sock = _buffered(b"".join([
        _publish(b"a/b", b'{"x": 1}'),
        _publish(b"a/r", b"kept", first=0x31),  # retained
        _publish(b"a/big", big),
        qos1,
        _publish(b"\xff\xfe", b"not UTF-8"),
        _publish(b"a/b", b"after"),
    ]))
    assert sock.take_publish(False) == ("a/b", b'{"x": 1}', False)
    assert sock.take_publish(False) == ("a/r", b"kept", True)
    assert sock.take_publish(False) == ("a/big", big, False)
    assert sock.take_publish(False) is None
    assert sock.recv(len(qos1)) == qos1  # left whole, for paho
    assert sock.take_publish(False) is None  # paho reports a topic that is not UTF-8
    sock.recv(len(_publish(b"\xff\xfe", b"not UTF-8")))
    assert sock.take_publish(False) == ("a/b", b"after", False)
    sock.close()


def test_take_publish_leaves_an_incomplete_packet_whole() -> None:
    packet = _publish(b"a/b", b"split in two")
    for cut in (1, 2, 4, 6, len(packet) - 1):
        sock = _buffered(packet[:cut])
        assert sock.take_publish(False) is None
        assert sock.buffered() == cut
        sock.close()


def test_take_publish_mqtt5_leaves_properties_to_paho() -> None:
    with_props = _publish(b"v/5", b"props", props=b"\x02\x01\x01")  # payload format
    sock = _buffered(_publish(b"v/5", b"no props", props=b"\x00") + with_props)
    assert sock.take_publish(True) == ("v/5", b"no props", False)
    assert sock.take_publish(True) is None
    assert sock.recv(len(with_props)) == with_props
    sock.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_mixed_stream_arrives_whole_and_in_order(
    broker: Broker, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if protocol == "5" and not broker.mqtt5:
        pytest.skip(f"{broker.impl} speaks MQTT 3.1.1 only")
    spy = _Spy(monkeypatch)
    with BlockingClient(broker) as retainer:
        for i in range(3):
            retainer.publish(f"mix/retained/{i}", f"r{i}".encode(), retain=True)
    v5 = protocol == "5"
    publisher = BlockingClient(broker, protocol=5 if v5 else 4).connect()
    sent: list[tuple[str, bytes, int]] = []
    for i in range(600):
        qos = 1 if i % 7 == 0 else 0
        # big payloads cross the read buffer's edge and take multi-byte lengths
        payload = (b"%d:" % i) + (b"z" * 70000 if i % 97 == 0 else b"")
        sent.append((f"mix/live/{i % 5}", payload, qos))

    def flood() -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("k", "v")
        for index, (topic, payload, qos) in enumerate(sent):
            extra = {"properties": props} if v5 and index % 3 == 0 else {}
            publisher.client.publish(topic, payload, qos=qos, **extra)
        publisher.publish("mix/end", b"end")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker, client_id=f"mix-{protocol}", protocol=protocol)
        retained: list[Message] = []
        live: list[Message] = []
        conn.subscribe("mix/retained/+", retained.append, qos=0)
        conn.subscribe("mix/live/+", live.append, qos=1)
        done: list[Message] = []
        conn.subscribe("mix/end", done.append)
        conn.start()
        await conn.when_connected(5)
        await wait_until(reactor, lambda: len(retained) == 3, what="the retained messages")
        assert sorted((m.topic, m.payload, m.retain) for m in retained) == [
            (f"mix/retained/{i}", f"r{i}".encode(), True) for i in range(3)]
        thread = threading.Thread(target=flood)
        thread.start()
        await wait_until(reactor, lambda: done, timeout=20, what="the end of the stream")
        thread.join()
        got = [(m.topic, m.payload, m.qos) for m in live]
        # the broker keeps order within a QoS (MQTT's promise), not across them
        for qos in (0, 1):
            assert [m for m in got if m[2] == qos] == [m for m in sent if m[2] == qos]
        assert len(got) == len(sent)
        assert not any(m.retain for m in live)
        await conn.stop()

    try:
        run_in_reactor(scenario, timeout=40)
    finally:
        publisher.close()
    # the shortcut carried the plain QoS 0 ones (but those split between two reads)
    plain = sum(qos == 0 and not (v5 and i % 3 == 0) for i, (_, _, qos) in enumerate(sent))
    assert plain // 2 < spy.taken <= plain + 3, (spy.taken, plain)


def test_after_read_runs_once_the_wakeups_messages_are_delivered(broker: Broker) -> None:
    # A subscriber that answers what a wake-up's messages caused (the zigbee collator)
    # does it here: after the messages, before the reactor turns, and what it publishes
    # is written (not left inside paho's read); a failing callback is logged, the others
    # still run; a removed one is not called again.
    from hadaemon.testing import capture_logs

    publisher = BlockingClient(broker).connect()
    publisher.subscribe("answer")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker)
        got: list[bytes] = []
        turned = [True]

        def on_message(message: Message) -> None:
            got.append(message.payload)
            turned[0] = False
            reactor.callLater(0, turned.__setitem__, 0, True)

        calls: list[tuple[int, bool]] = []

        def answer() -> None:
            calls.append((len(got), turned[0]))
            if got and not turned[0]:
                conn.publish("answer", got[-1], qos=0)

        def failing() -> None:
            raise RuntimeError("boom")

        conn.subscribe("ask", on_message, qos=0)
        remove_failing = conn.after_read(failing)
        remove_answer = conn.after_read(answer)
        conn.start()
        await conn.when_connected(5)
        with capture_logs() as logs:
            publisher.publish("ask", b"1", qos=0)
            await wait_until(reactor, lambda: got, what="the question")
        assert (1, False) in calls
        assert "failing failed" in logs.text() and "boom" in logs.text()
        remove_answer()
        remove_failing()
        remove_failing()  # twice: harmless
        calls.clear()
        publisher.publish("ask", b"2", qos=0)
        await wait_until(reactor, lambda: len(got) == 2, what="the second question")
        assert calls == []
        await conn.stop()

    run_in_reactor(scenario, timeout=15)
    assert publisher.expect("answer").payload == b"1"
    publisher.close()


def test_take_puback_takes_only_whole_pubacks_of_our_own_publishes() -> None:
    ours = {7: None, 9: None}
    sock = _buffered(b"".join([
        b"\x40\x02\x00\x07",  # ours
        b"\x40\x02\x00\x08",  # paho's: left for paho
    ]))
    assert sock.take_puback(ours) == 7
    assert sock.take_puback(ours) is None
    assert sock.recv(4) == b"\x40\x02\x00\x08"
    sock.close()
    # MQTT 5: a reason code (and properties) after the packet id
    sock = _buffered(b"\x40\x03\x00\x09\x10" + _publish(b"a/b", b"x"))
    assert sock.take_puback(ours) == 9
    assert sock.take_publish(False) == ("a/b", b"x", False)
    sock.close()
    assert _buffered(b"\x40\x02\x00").take_puback(ours) is None  # not whole yet


def test_the_puback_of_a_framed_publish_is_ours_even_when_paho_reads_it() -> None:
    """paho reads several packets at once while it has messages in flight: a PUBACK of
    a PUBLISH we framed that reaches paho still completes it (paho ignores such ids)."""
    from paho.mqtt.client import _ConnectionState
    from twisted.internet.task import Clock
    from twisted.logger import Logger

    from hadaemon.mqtt import MqttSettings
    from hadaemon.mqtt.transport import PahoSession

    acked: list[int] = []
    session = PahoSession(Clock(), MqttSettings(client_id="t"), None,
                          on_connack=lambda ok, reason: None, on_message=lambda *a: None,
                          on_publish=acked.append, on_closed=lambda reason: None, log=Logger())
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    sock = _BufferedSocket(ours)
    session.client._sock = sock
    session.client._state = _ConnectionState.MQTT_CS_CONNECTED
    session._sock = sock
    session._handed_over = True
    mid = session.publish("a/b", b"x", 1, False)
    assert mid is not None and session._out  # framed by us, not yet written
    theirs.sendall(b"\x40\x02" + mid.to_bytes(2, "big") + b"\x40\x02\xff\xfe")
    session.client.loop_read()  # paho reads our PUBACK (and ignores the unknown one)
    session.client.loop_read()
    assert acked == [mid]
    ours.close()
    theirs.close()
