"""Faults: the broker killed and restarted, garbage and silence on the socket."""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any

from twisted.internet.defer import DeferredList
from twisted.internet.task import Clock

from hadaemon.bus import Bus
from hadaemon.mqtt import Message
from hadaemon.testing import (
    BlockingClient,
    Broker,
    capture_logs,
    free_tcp_port,
    run_in_reactor,
    wait_until,
)

from .test_connection import reactor_thread
from .util import Lifecycles, connection, settings_for


def test_broker_killed_and_restarted_reconnects_losing_and_reordering_nothing(
    broker: Broker,
) -> None:
    async def scenario(reactor: Any) -> None:
        bus = Bus(reactor)
        events = Lifecycles(bus)
        conn = connection(reactor, broker, bus)
        got: list[str] = []
        conn.subscribe("k/in", lambda m: got.append(m.text()))
        conn.start()
        await conn.when_connected(5)
        # in flight when the broker dies: some acknowledged, some not, some not yet sent
        burst = [conn.publish("k/out", str(i)) for i in range(200)]
        await reactor_thread(reactor, broker.kill)
        await wait_until(reactor, lambda: events.events == ["connected", "disconnected"])
        during = [conn.publish("k/out", f"late{i}") for i in range(20)]
        watcher = await reactor_thread(reactor, _restart_and_watch, broker)
        await wait_until(reactor, lambda: events.events[-1] == "reconnected", timeout=10)
        results = await DeferredList(burst + during, consumeErrors=True)
        assert all(ok for ok, _ in results), [r for ok, r in results if not ok][:3]
        # the subscription was restored on the new connection
        await reactor_thread(reactor, watcher.publish, "k/in", b"after")
        await wait_until(reactor, lambda: got == ["after"], what="message after reconnect")
        await wait_until(reactor, lambda: any(m.payload == b"late19"
                                              for m in watcher.pending()))
        received = [watcher.expect("k/out").payload for _ in range(len(watcher.pending()))]
        # what the dead broker had not acknowledged was resent first, in order, then the
        # publishes made while disconnected: nothing lost, nothing reordered
        resent = [int(p) for p in received[:-20]]
        assert resent == sorted(resent) and set(resent) <= set(range(200))
        assert received[-20:] == [f"late{i}".encode() for i in range(20)]
        watcher.close()
        await conn.stop()
        assert events.events == ["connected", "disconnected", "reconnected"]

    run_in_reactor(scenario, timeout=30)


def _restart_and_watch(broker: Broker) -> BlockingClient:
    broker.start()
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("k/out")
    return watcher


class _FakeServer:
    """A TCP server that answers every connection with ``reply`` (or nothing) and keeps it."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.port = free_tcp_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(client)
            if self.reply is not None:
                try:
                    client.recv(1024)
                    client.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
        for client in self.accepted:
            client.close()


def _fake_broker_settings(server: _FakeServer, **kw: Any) -> Any:
    class _B:
        host = "127.0.0.1"
        port = server.port
        username = password = None
        tls = require_client_cert = False
        ca_path = None

    return settings_for(_B(), **kw)  # type: ignore[arg-type]


def test_garbage_from_the_server_is_survived() -> None:
    server = _FakeServer(b"\xff\x00garbage that is not MQTT at all" * 10)

    async def scenario(reactor: Any) -> None:
        from hadaemon.mqtt import MqttConnection

        with capture_logs():
            conn = MqttConnection(reactor, _fake_broker_settings(server))
            conn.start()
            await wait_until(reactor, lambda: conn.machine.attempt >= 3, what="retries")
        assert not conn.connected
        assert conn.machine.last_error
        await conn.stop()

    try:
        run_in_reactor(scenario, timeout=15)
    finally:
        server.close()


def test_silent_server_times_out_and_retries() -> None:
    server = _FakeServer(None)  # accepts, never answers CONNECT

    async def scenario(reactor: Any) -> None:
        from hadaemon.mqtt import MqttConnection

        conn = MqttConnection(reactor, _fake_broker_settings(server, connect_timeout=0.3))
        conn.start()
        await wait_until(reactor, lambda: conn.machine.attempt >= 2, what="a retry")
        assert "no CONNACK within 0.3 s" in conn.machine.last_error
        await conn.stop()

    try:
        run_in_reactor(scenario, timeout=15)
    finally:
        server.close()


class _ClockWithThreads(Clock):
    """``task.Clock`` whose ``callFromThread`` queues the call until the test runs it:
    the connection's connect thread reports to it as to a reactor."""

    def __init__(self) -> None:
        super().__init__()
        self.from_threads: queue.Queue[tuple[Any, tuple[Any, ...]]] = queue.Queue()

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.from_threads.put((f, args))

    def run_from_thread(self, timeout: float = 30.0) -> None:
        """Wait for the next call from a thread (a connect attempt's end) and run it."""
        f, args = self.from_threads.get(timeout=timeout)
        f(*args)


def test_connection_refused_backs_off_exponentially_and_stops_retrying_on_stop() -> None:
    from hadaemon.mqtt import MqttConnection, MqttSettings

    clock = _ClockWithThreads()
    conn = MqttConnection(clock, MqttSettings(
        port=free_tcp_port(), reconnect_delay=1.0, reconnect_delay_max=4.0, reconnect_jitter=0.5,
        client_id="refused"), rand=lambda: 0.5)  # jitter takes a quarter off
    conn.start()
    clock.run_from_thread()  # the first attempt, refused (a real socket, in its thread)
    assert conn.machine.attempt == 1 and conn.machine.last_error == "connection refused"
    for attempt, delay in enumerate([0.75, 1.5, 3.0, 3.0], start=2):  # capped at 4 * 0.75
        clock.advance(delay - 0.001)
        assert conn.machine.attempt == attempt - 1, f"attempt {attempt} came early"
        clock.advance(0.001)
        assert conn.machine.attempt == attempt, f"attempt {attempt} did not come"
        clock.run_from_thread()
        assert conn.machine.last_error == "connection refused"
    stopped = conn.stop()
    assert stopped.called and not conn.connected
    assert clock.getDelayedCalls() == []  # the retry was cancelled: nothing can wake it
    clock.advance(3600)
    assert conn.machine.attempt == 5 and clock.from_threads.empty()


def test_stop_fails_what_cannot_be_delivered() -> None:
    port = free_tcp_port()

    async def scenario(reactor: Any) -> None:
        from hadaemon.mqtt import ConnectionStopped, MqttConnection, MqttSettings

        conn = MqttConnection(reactor, MqttSettings(port=port, client_id="x"))
        conn.start()
        pending = conn.publish("never/sent", "x")
        await conn.stop()
        try:
            await pending
        except ConnectionStopped as exc:
            assert "never/sent" in str(exc)
        else:
            raise AssertionError("a queued publish must fail when the connection stops")

    run_in_reactor(scenario, timeout=10)


def test_message_helpers() -> None:
    message = Message("t", b"\xff{", 1, False)
    assert message.text() == "\ufffd{"
    try:
        message.json()
    except ValueError:
        pass
    else:
        raise AssertionError("not JSON")
