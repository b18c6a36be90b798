"""systemd's service notifications (``Type=notify``) with the standard library only.

systemd passes a datagram socket in ``$NOTIFY_SOCKET`` (a path, or an abstract name
written with a leading ``@``); a service sends it newline-separated ``KEY=value`` lines
(the sd_notify(3) protocol). The daemon sends:

- ``READY=1`` once every plugin's start has settled (systemd's start job ends there,
  so ``After=hadaemon.service`` units start once hadaemon really runs);
- ``WATCHDOG=1`` every ``$WATCHDOG_USEC / 2`` from the reactor thread, so that a reactor
  stalled for longer than ``WatchdogSec`` stops the pings and systemd restarts it
  (honouring ``$WATCHDOG_PID``: pings only when it names this process);
- ``STOPPING=1`` when the stop begins, and ``STATUS=`` lines for ``systemctl status``.

The three variables are removed from the environment once read, as sd_notify's
``unset_environment`` does: node processes, services' pip runs and brokers must not
notify systemd as if they were the daemon. Without ``$NOTIFY_SOCKET`` nothing is sent.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from hadaemon.logs import get_logger

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"


class SystemdNotifier:
    """Sends sd_notify messages to ``$NOTIFY_SOCKET`` (when set; otherwise nothing).

    Reactor thread only (``notify`` may be called before the reactor runs). Sending never
    raises: a notification that cannot be sent is logged once, and the daemon goes on.
    """

    def __init__(
        self,
        reactor: Any,
        *,
        environ: MutableMapping[str, str] | None = None,
        pid: int | None = None,
        unset_environment: bool = True,
        log: Logger | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._reactor = reactor
        self._log = log or get_logger("hadaemon.systemd")
        self._socket: socket.socket | None = None
        self._pinger: LoopingCall | None = None
        self._complained = False
        self.address = _address(env.get(NOTIFY_SOCKET, ""))
        if env.get(NOTIFY_SOCKET) and self.address is None:
            self._log.warn("ignoring ${name}={value!r}: not a path nor an @abstract name",
                           name=NOTIFY_SOCKET, value=env.get(NOTIFY_SOCKET))
        self.watchdog_interval = _watchdog_interval(env, os.getpid() if pid is None else pid)
        if unset_environment:
            for name in (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID):
                env.pop(name, None)

    @property
    def enabled(self) -> bool:
        """Whether systemd listens (``$NOTIFY_SOCKET`` was set)."""
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (``"READY=1"``, ``"STATUS=..."``) as one message; True if sent."""
        if self.address is None:
            return False
        data = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8", "replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)  # never wait on systemd from the reactor
            self._socket.sendto(data, self.address)
        except OSError as exc:
            if not self._complained:
                self._complained = True
                self._log.warn("cannot notify systemd at {address!r}: {error}",
                               address=self.address, error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def start_watchdog(self) -> None:
        """Ping every ``WatchdogSec / 2`` from the reactor (only when systemd asked)."""
        if self._pinger is not None or self.watchdog_interval is None or not self.enabled:
            return
        self._pinger = LoopingCall(self.notify, "WATCHDOG=1")
        self._pinger.clock = self._reactor
        self._pinger.start(self.watchdog_interval, now=True)

    def stop_watchdog(self) -> None:
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        self._pinger = None

    def close(self) -> None:
        """Stop the pings and close the socket (idempotent)."""
        self.stop_watchdog()
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _address(value: str) -> str | None:
    # An abstract socket's name starts with a NUL byte; systemd writes it as "@".
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def _watchdog_interval(env: MutableMapping[str, str], pid: int) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, if it is meant for ``pid``."""
    try:
        usec = int(env.get(WATCHDOG_USEC, ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get(WATCHDOG_PID)
    if owner and owner != str(pid):
        return None  # systemd's watchdog watches another process (our parent, a shell)
    return usec / 2 / 1e6
