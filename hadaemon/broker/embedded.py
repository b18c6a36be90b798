"""The embedded broker: an MQTT broker the daemon runs itself (``[mqtt] broker =
"embedded"``), so a machine with no broker still runs the zigbee2mqtt world.

mosquitto when installed (a supervised child process, restarted with backoff if it dies),
else amqtt in the daemon's own asyncio loop. Either listens on 127.0.0.1 only, on a
port of its own, and takes only the user name and random password made for this run
(other local users cannot connect); its files are in its directory in the state dir:
the config, the hashed password, and ``broker.json`` (0600: the address, credentials and
mosquitto's pid, for a ``mosquitto_sub`` while debugging, and for tests). Nothing is
persisted: every start is a fresh broker, and the daemon's clients publish their
retained state again.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.backoff import Backoff
from hadaemon.broker.configs import (
    Listener,
    amqtt_password_line,
    mosquitto_config,
    mosquitto_password_line,
)
from hadaemon.broker.impls import amqtt_installed, find_mosquitto
from hadaemon.broker.inloop import AmqttBroker
from hadaemon.broker.mosquitto import MosquittoProcess
from hadaemon.broker.ports import free_tcp_port

__all__ = ["BrokerAddress", "BrokerUnavailable", "EmbeddedBroker", "choose_impl",
           "running_address"]

HOST: Final = "127.0.0.1"
USERNAME: Final = "hadaemon"
_START_TIMEOUT: Final = 30.0  # seconds; only guards a hang (a loaded machine is slow)
_PORT_ATTEMPTS: Final = 3
_STABLE_AFTER: Final = 10.0  # seconds a broker must run for its death to count as new


class BrokerUnavailable(RuntimeError):
    """No broker can be embedded here, or the one asked for is missing."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the embedded broker listens and the credentials it takes."""

    host: str
    port: int
    username: str
    password: str

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def choose_impl(preference: str) -> str:
    """``"mosquitto"`` or ``"amqtt"`` for ``preference`` ("auto": mosquitto if installed,
    else amqtt); :class:`BrokerUnavailable` says what to install."""
    mosquitto = find_mosquitto() is not None
    if preference == "mosquitto" and not mosquitto:
        raise BrokerUnavailable(
            'broker_impl = "mosquitto" but mosquitto is not installed (e.g. apt install '
            'mosquitto), or use broker_impl = "auto"')
    if preference == "amqtt" and not amqtt_installed():
        raise BrokerUnavailable(
            "broker_impl = \"amqtt\" but amqtt is not installed: pip install 'hadaemon[broker]'")
    if preference in ("mosquitto", "amqtt"):
        return preference
    if mosquitto:
        return "mosquitto"
    if amqtt_installed():
        return "amqtt"
    raise BrokerUnavailable(
        "no MQTT broker to embed: install mosquitto (e.g. apt install mosquitto) or amqtt "
        "(pip install 'hadaemon[broker]'), or set [mqtt] broker = \"external\" and host")


def running_address(directory: pathlib.Path) -> BrokerAddress | None:
    """The address and credentials of the embedded broker whose files are in
    ``directory``, while it runs (its ``broker.json``; None when there is none)."""
    try:
        info = json.loads((directory / "broker.json").read_text(encoding="utf-8"))
        return BrokerAddress(str(info["host"]), int(info["port"]), str(info["username"]),
                             str(info["password"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class EmbeddedBroker:
    """The broker the daemon runs for itself. Reactor thread only.

    ``start()`` fires with its :class:`BrokerAddress` once it accepts connections; a
    mosquitto that dies after that is started again on the same address after
    ``backoff``'s delay (its clients reconnect); ``stop()`` ends it.
    """

    def __init__(
        self,
        reactor: Any,
        directory: pathlib.Path,
        *,
        log: Logger,
        backoff: Backoff,
        impl: str = "auto",
        port: int = 0,
        on_restart: Callable[[], object] | None = None,
    ) -> None:
        self._reactor = reactor
        self.directory = directory
        self._log = log
        self._backoff = backoff
        self._preference = impl
        self._port = port
        self._on_restart = on_restart
        self.impl: str | None = None
        self.address: BrokerAddress | None = None
        self.restarts = 0
        """How many times it was started again after dying."""
        self._mosquitto: MosquittoProcess | None = None
        self._amqtt: AmqttBroker | None = None
        self._restart: IDelayedCall | None = None
        self._started_at = 0.0
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """mosquitto's pid while it runs (None for amqtt, which runs in this process)."""
        return self._mosquitto.pid if self._mosquitto is not None else None

    @property
    def running(self) -> bool:
        """Whether it is up (or, for mosquitto, its process is)."""
        return self.pid is not None or self._amqtt is not None

    # -- start ----------------------------------------------------------------------------

    def start(self) -> Deferred[BrokerAddress]:
        """Prepare the files and start the broker; fails with the broker's own words."""
        self.impl = choose_impl(self._preference)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        password = secrets.token_urlsafe(24)
        line = (mosquitto_password_line if self.impl == "mosquitto"
                else amqtt_password_line)(USERNAME, password)
        _write_private(self.directory / "passwords", line + "\n")
        attempts = 1 if self._port else _PORT_ATTEMPTS
        d = self._start_on(self._port or free_tcp_port(HOST), password, attempts)
        return d.addCallback(self._started)

    def _start_on(self, port: int, password: str, attempts: int) -> Deferred[BrokerAddress]:
        address = BrokerAddress(HOST, port, USERNAME, password)
        d = self._launch(address)

        def failed(failure: Failure) -> Deferred[BrokerAddress] | Failure:
            if attempts > 1 and "address already in use" in str(failure.value).lower():
                return self._start_on(free_tcp_port(HOST), password, attempts - 1)
            return failure

        return d.addCallbacks(lambda _: address, failed)

    def _launch(self, address: BrokerAddress) -> Deferred[None]:
        listener = Listener(address.host, address.port,
                            password_file=self.directory / "passwords")
        self._started_at = self._reactor.seconds()
        if self.impl == "amqtt":
            amqtt = AmqttBroker(listener, on_line=self._relay)
            self._amqtt = amqtt

            def forget(failure: Failure) -> Failure:
                self._amqtt = None
                return failure

            return amqtt.start().addErrback(forget)
        config = self.directory / "mosquitto.conf"
        _write_private(config, mosquitto_config(
            listener, header="generated by hadaemon (the embedded broker); rewritten at "
            "every start"))
        binary = find_mosquitto()
        if binary is None:
            return fail(BrokerUnavailable("mosquitto is not installed any more"))
        self._mosquitto = MosquittoProcess(self._reactor, binary, str(config),
                                           on_line=self._relay, on_exit=self._died)
        d = self._mosquitto.start()
        timeout = self._reactor.callLater(_START_TIMEOUT, self._mosquitto.kill)
        return d.addBoth(_cancelling(timeout))

    def _started(self, address: BrokerAddress) -> BrokerAddress:
        self.address = address
        self._write_info(address)
        where = f"pid {self.pid}" if self.pid is not None else "in the daemon's loop"
        self._log.info("embedded MQTT broker ({impl}, {where}) at {url}; credentials in "
                       "{file}", impl=self.impl, where=where, url=address.url,
                       file=str(self.directory / "broker.json"))
        return address

    def _write_info(self, address: BrokerAddress) -> None:
        _write_private(self.directory / "broker.json", json.dumps(
            {"impl": self.impl, "pid": self.pid, "url": address.url, "host": address.host,
             "port": address.port, "username": address.username,
             "password": address.password}, indent=2) + "\n")

    def _relay(self, level: str, text: str) -> None:
        emit = {"error": self._log.error, "warn": self._log.warn}.get(level, self._log.debug)
        emit("{impl}: {line}", impl=self.impl, line=text)

    # -- supervision ----------------------------------------------------------------------

    def _died(self, status: int | None) -> None:
        self._mosquitto = None
        if self._stopping or self.address is None:
            return
        if self._reactor.seconds() - self._started_at >= _STABLE_AFTER:
            self._backoff.reset()
        delay = self._backoff.next_delay()
        self._log.error("the embedded MQTT broker (mosquitto) exited unexpectedly (status "
                        "{status}): starting it again in {delay:.2g} s", status=status,
                        delay=delay)
        self._restart = self._reactor.callLater(delay, self._again)

    def _again(self) -> None:
        self._restart = None
        address = self.address
        if self._stopping or address is None:
            return

        def up(_: object) -> None:
            self.restarts += 1
            self._write_info(address)
            self._log.info("embedded MQTT broker running again at {url} (pid {pid})",
                           url=address.url, pid=self.pid)
            if self._on_restart is not None:
                self._on_restart()

        def down(failure: Failure) -> None:
            # (its exit was not seen as a death: it never ran) try again, later each time
            self._mosquitto = None
            delay = self._backoff.next_delay()
            self._log.error("the embedded MQTT broker did not start again ({why}); next "
                            "attempt in {delay:.2g} s", why=failure.getErrorMessage(),
                            delay=delay)
            if not self._stopping:
                self._restart = self._reactor.callLater(delay, self._again)

        self._launch(address).addCallbacks(up, down)

    # -- stop -----------------------------------------------------------------------------

    def stop(self, timeout: float = 2.0) -> Deferred[None]:
        """End it: mosquitto gets SIGTERM, SIGKILL after ``timeout``; amqtt closes."""
        self._stopping = True
        if self._restart is not None and self._restart.active():
            self._restart.cancel()
        self._restart = None
        with contextlib.suppress(OSError):  # (what it says is no longer true)
            (self.directory / "broker.json").unlink()
        if self._mosquitto is not None:
            return self._mosquitto.stop(timeout)
        if self._amqtt is not None:
            amqtt, self._amqtt = self._amqtt, None
            return amqtt.stop()
        return succeed(None)


def _write_private(path: pathlib.Path, text: str) -> None:
    """Write a file only this user can read (it may hold a secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)
        file.write(text)


def _cancelling(call: IDelayedCall) -> Callable[[Any], Any]:
    def cancel(result: Any) -> Any:
        if call.active():
            call.cancel()
        return result

    return cancel

