"""The node side of hadaemon's node wire: msgpack-rpc over the daemon's Unix socket.

Threads (all daemon threads, so they never keep a finished node alive):

- the *connection* thread connects, authenticates with the node's token, reads every
  message and hands it on; it never runs user code and never waits for a callback, so
  answers to calls always get through, whatever the callbacks do;
- the *input* thread runs ``nodeInput`` callbacks one at a time in arrival order and
  answers each ``nodeInput`` request when its callback returned (the daemon's window of
  in-flight inputs is the flow control);
- the *event* thread runs ``eventHandler`` callbacks one at a time in arrival order.

Calls may come from any thread; the caller waits on a lock (the GIL is released) with a
timeout. Messages (msgpack-rpc): request ``[0, id, method, params]``, response
``[1, id, error, result]``, notification ``[2, method, params]``; an error is
``{"faultCode": int, "faultString": str}``.

Python 3.7+, standard library only (plus msgpack when present).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

try:
    from . import _homegear_values as values
except ImportError:
    import _homegear_values as values  # type: ignore[no-redef, import-not-found]

if TYPE_CHECKING:
    from collections.abc import Callable

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2
PROTOCOL_VERSION = 1
AUTH_REFUSED = -32001  # the daemon does not know this node/token: an orphan, exit

ENV_TOKEN = "HADAEMON_NODE_TOKEN"
ENV_NODE_ID = "HADAEMON_NODE_ID"
ENV_DAEMON_PID = "HADAEMON_DAEMON_PID"
ENV_CALL_TIMEOUT = "HADAEMON_CALL_TIMEOUT"

_RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)
_EVENT_QUEUE_LIMIT = 10000  # events waiting for a slow eventHandler before some are dropped
_ACK_BATCH = 64


def _take_daemon_pid() -> int | None:
    """The pid of the daemon that started this node (None when not started by one).

    Taken out of the environment, so that what the node starts does not inherit it (a
    Python child importing this module would otherwise take itself for the node).
    """
    value = os.environ.pop(ENV_DAEMON_PID, "")
    return int(value) if value.isdigit() else None


def _die_with_the_daemon(daemon_pid: int | None) -> None:
    """End this process when its daemon dies, even by SIGKILL.

    The daemon spawns nodes with vfork and nothing in between (a parent-death step run
    between fork and exec makes every spawn a full fork of the daemon: ~10-20 ms of its
    reactor each), so the node arms its parent-death signal itself, first thing, and
    then checks that the daemon did not die before that. Before it is armed (the
    interpreter's start), the daemon's reaper covers the node's process group.
    """
    if daemon_pid is None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass  # no ctypes: the reaper, and the connection's orphan check, still end it
    if os.getppid() != daemon_pid:
        os._exit(70)  # the daemon died before the signal was armed


# Only as a node's client: the daemon imports this module too, for its constants.
DAEMON_PID = None if __name__.startswith("hadaemon.") else _take_daemon_pid()
_die_with_the_daemon(DAEMON_PID)


class _Disconnected(Exception):
    """The connection went away while a call waited (the call returns None)."""


def _fault_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("faultString", error))
    return str(error)


def warn(text: str) -> None:
    """A line on stderr; the daemon logs a node's stderr at error level, tagged."""
    try:
        sys.stderr.write(f"homegear: {text}\n")
        sys.stderr.flush()
    except Exception:
        pass


class _Pending:
    """One call waiting for its answer (a lock: waiting on it releases the GIL)."""

    __slots__ = ("error", "lock", "result", "state")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.state = 0  # 0 waiting, 1 answered, 2 disconnected
        self.result: Any = None
        self.error: Any = None

    def resolve(self, error: Any, result: Any) -> None:
        self.error, self.result, self.state = error, result, 1
        self.lock.release()

    def drop(self) -> None:
        self.state = 2
        self.lock.release()


class Connection:
    """One node's link to the daemon; reconnects by itself (see the module docstring)."""

    def __init__(
        self,
        path: str,
        node_id: str,
        token: str | None,
        on_input: Callable[[Any, int, Any], Any] | None,
        on_event: Callable[..., Any] | None,
        call_timeout: float,
    ) -> None:
        self.path = path
        self.node_id = node_id
        self._token = token
        self._on_input = on_input
        self._on_event = on_event
        self.call_timeout = call_timeout
        self._daemon_pid = DAEMON_PID
        self._sock: socket.socket | None = None
        self._out: list[bytes] = []  # waiting for the writer thread, in order
        self._out_ready = threading.Condition()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._connected = threading.Event()
        self._settled = threading.Event()  # connected, or refused for good
        self._closed = False
        self._node_info_packed = values.pack(None)
        self._credits = 0  # notifications the daemon is ready to take (see post)
        self._credit_ready = threading.Condition()
        self._inputs: collections.deque[tuple[Any, int, Any]] = collections.deque()
        self._inputs_ready = threading.Condition()
        self._events: collections.deque[list[Any]] = collections.deque()
        self._events_ready = threading.Condition()
        self._events_dropped = 0
        self._threads_started = False
        self._ack_batch = _ACK_BATCH
        # The daemon sends inputs and events once the node answered ping; that answer
        # waits for serve() (see Homegear.__init__).
        self._serving = False
        self._held_pings: list[Any] = []
        self._serve_lock = threading.Lock()

    # -- state -----------------------------------------------------------------------

    def start(self) -> None:
        if self._threads_started:
            return
        self._threads_started = True
        for target, name in (
            (self._run, "homegear-connection"),
            (self._write_loop, "homegear-writer"),
            (self._input_loop, "homegear-input"),
            (self._event_loop, "homegear-events"),
        ):
            threading.Thread(target=target, name=name, daemon=True).start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected (or refused for good), at most ``timeout`` seconds."""
        self._settled.wait(timeout)
        return self.connected()

    def connected(self) -> bool:
        return self._connected.is_set() and not self._closed

    def serve(self) -> None:
        """The node script holds its Homegear object: answer pings from now on."""
        if self._serving:
            return
        with self._serve_lock:
            self._serving = True
            held, self._held_pings = self._held_pings, []
        for msgid in held:
            self._answer(msgid, None, True)

    def node_info(self) -> Any:
        """A fresh copy of the node's nodeInfo (callbacks may change theirs freely)."""
        return values.unpack(self._node_info_packed)

    # -- calls -------------------------------------------------------------------------

    def call(self, method: str, params: list[Any], timeout: float | None = None) -> Any:
        """Call ``method`` and wait for the result; None while disconnected.

        A fault raises ``Exception(faultString)``; no answer within the timeout raises
        ``TimeoutError``.
        """
        if not self.connected():
            return None
        msgid, pending = self._register()
        try:
            self._send(values.pack([REQUEST, msgid, method, params]))
        except _Disconnected:
            self._forget(msgid)
            return None
        except BaseException:
            self._forget(msgid)
            raise
        limit = self.call_timeout if timeout is None else timeout
        if not pending.lock.acquire(timeout=limit if limit > 0 else -1):
            self._forget(msgid)
            raise TimeoutError(f"{method}: no answer from the daemon within {limit:g} s")
        if pending.state != 1:
            return None
        if pending.error is not None:
            raise Exception(_fault_text(pending.error))
        return pending.result

    def post(self, method: str, params: list[Any]) -> None:
        """Send a call as a notification: no answer is awaited (a fault comes back as a
        ``fault`` notification, written to stderr).

        Each costs a credit; the daemon grants them back as it handles the calls, and
        holds them back while a destination is full. Without credit this waits, so a
        node that outputs faster than its destinations take is slowed down, not buffered
        and not dropped.
        """
        if not self.connected():
            return
        data = values.pack([NOTIFICATION, method, params])  # a bad value raises here
        with self._credit_ready:
            if self._credits <= 0:
                deadline = time.monotonic() + self.call_timeout
                while self._credits <= 0 and self.connected():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(
                            f"{method}: the daemon took none of the last calls within "
                            f"{self.call_timeout:g} s"
                        )
                    self._credit_ready.wait(left)
                if not self.connected():
                    return
            self._credits -= 1
        with contextlib.suppress(_Disconnected):
            self._send(data)

    def _register(self) -> tuple[int, _Pending]:
        msgid = next(self._ids)
        pending = _Pending()
        with self._pending_lock:
            self._pending[msgid] = pending
        return msgid, pending

    def _forget(self, msgid: int) -> None:
        with self._pending_lock:
            self._pending.pop(msgid, None)

    def _send(self, data: bytes) -> None:
        """Hand ``data`` to the writer thread (raises _Disconnected when not connected)."""
        if self._sock is None:
            raise _Disconnected
        with self._out_ready:
            self._out.append(data)
            if len(self._out) == 1:
                self._out_ready.notify()

    def _write_loop(self) -> None:
        # One thread writes everything, many messages per system call: whatever was
        # queued while the previous write ran goes out together.
        while True:
            with self._out_ready:
                while not self._out:
                    self._out_ready.wait()
                batch, self._out = self._out, []
            sock = self._sock
            if sock is None:
                continue  # disconnected: calls return None, answers are moot
            with contextlib.suppress(OSError):  # the connection thread notices the loss
                sock.sendall(b"".join(batch))

    # -- the connection thread ------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._closed:
            if self._daemon_gone():
                self._fatal("the daemon that started this node is gone")
                return
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.path)
            except OSError:
                sock.close()
                time.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
                attempt += 1
                continue
            try:
                unpacker = values.Unpacker()
                if not self._authenticate(sock, unpacker):
                    return
                attempt = 0
                self._read(sock, unpacker)
            except OSError:
                pass
            except Exception:
                warn("connection failed:\n" + traceback.format_exc())
            finally:
                self._disconnected(sock)
            if not self._closed:
                time.sleep(_RECONNECT_DELAYS[0])

    def _daemon_gone(self) -> bool:
        return self._daemon_pid is not None and os.getppid() != self._daemon_pid

    def _authenticate(self, sock: socket.socket, unpacker: values.Unpacker) -> bool:
        info = {"pid": os.getpid(), "protocol": PROTOCOL_VERSION, "codec": values.BACKEND}
        sock.sendall(values.pack([REQUEST, 0, "authenticate", [self.node_id, self._token, info]]))
        while True:
            data = sock.recv(65536)
            if not data:
                raise OSError("connection closed during authentication")
            unpacker.feed(data)
            for message in unpacker:
                if (
                    isinstance(message, list)
                    and len(message) == 4
                    and message[0] == RESPONSE
                    and message[1] == 0
                ):
                    error, result = message[2], message[3]
                    if error is not None:
                        code = error.get("faultCode") if isinstance(error, dict) else None
                        if code == AUTH_REFUSED:
                            self._fatal(f"the daemon refused this node: {_fault_text(error)}")
                            return False
                        raise OSError(f"authentication failed: {_fault_text(error)}")
                    if isinstance(result, dict):
                        self._node_info_packed = values.pack(result.get("nodeInfo"))
                        credits = result.get("credits")
                        if isinstance(credits, int):
                            self._grant(credits)
                        window = result.get("window")
                        if isinstance(window, int) and window > 0:
                            # Answer while half the window is still being worked on,
                            # so that the daemon sends more before this thread is idle.
                            self._ack_batch = max(1, min(_ACK_BATCH, window // 2))
                    self._sock = sock
                    self._connected.set()
                    self._settled.set()
                    # Anything that arrived with the answer (a ping, say) is handled now.
                    inputs: list[tuple[Any, int, Any]] = []
                    events: list[list[Any]] = []
                    for later in unpacker:
                        self._dispatch(later, inputs, events)
                    if inputs:
                        with self._inputs_ready:
                            self._inputs.extend(inputs)
                            self._inputs_ready.notify()
                    if events:
                        self._queue_events(events)
                    return True
                # Nothing else is expected before the answer; ignore it.

    def _read(self, sock: socket.socket, unpacker: values.Unpacker) -> None:
        recv = sock.recv
        feed = unpacker.feed
        dispatch = self._dispatch
        inputs: list[tuple[Any, int, Any]] = []
        events: list[list[Any]] = []
        while True:
            data = recv(262144)
            if not data:
                return
            feed(data)
            for message in unpacker:
                dispatch(message, inputs, events)
            # Everything that came in one read goes to the workers in one hand-over.
            if inputs:
                with self._inputs_ready:
                    self._inputs.extend(inputs)
                    self._inputs_ready.notify()
                inputs.clear()
            if events:
                self._queue_events(events)
                events.clear()

    def _dispatch(
        self, message: Any, inputs: list[tuple[Any, int, Any]], events: list[list[Any]]
    ) -> None:
        if not isinstance(message, list) or not message:
            warn(f"ignoring a message that is not msgpack-rpc: {type(message).__name__}")
            return
        kind = message[0]
        if kind == RESPONSE and len(message) == 4:
            with self._pending_lock:
                pending = self._pending.pop(message[1], None)
            if pending is not None:
                pending.resolve(message[2], message[3])
        elif kind == REQUEST and len(message) == 4:
            method, params = message[2], message[3]
            if method == "nodeInput" and isinstance(params, list) and len(params) == 2:
                inputs.append((message[1], params[0], params[1]))
            elif method == "ping":
                with self._serve_lock:
                    if not self._serving:
                        self._held_pings.append(message[1])
                        return
                self._answer(message[1], None, True)
            else:
                self._answer(
                    message[1],
                    {"faultCode": -32601, "faultString": f"unknown method {method!r}"},
                    None,
                )
        elif kind == NOTIFICATION and len(message) == 3 and isinstance(message[2], list):
            method, params = message[1], message[2]
            if method == "event":
                events.append(params)
            elif method == "credit" and params and isinstance(params[0], int):
                self._grant(params[0])
            elif method == "fault" and params:
                warn(f"a call failed: {params[0]}")

    def _grant(self, credits: int) -> None:
        with self._credit_ready:
            self._credits += credits
            self._credit_ready.notify_all()

    def _answer(self, msgid: Any, error: Any, result: Any) -> None:
        with contextlib.suppress(_Disconnected):
            self._send(values.pack([RESPONSE, msgid, error, result]))

    def _disconnected(self, sock: socket.socket) -> None:
        self._connected.clear()
        self._sock = None
        with self._credit_ready:  # a new connection brings fresh credit
            self._credits = 0
            self._credit_ready.notify_all()
        with self._out_ready:
            self._out.clear()
        with contextlib.suppress(OSError):
            sock.close()
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for waiter in pending.values():
            waiter.drop()
        # Inputs not answered yet went with the connection: the daemon counts them lost.
        with self._inputs_ready:
            self._inputs.clear()
        with self._serve_lock:
            self._held_pings.clear()

    def _fatal(self, reason: str) -> None:
        """The daemon does not know this process: stop, and make sure the process ends."""
        self._closed = True
        self._connected.clear()
        self._settled.set()
        warn(f"{reason}; exiting")
        # The standard template exits by itself once connected() is False; a node that
        # does not check gets SIGTERM, then a hard exit.
        time.sleep(2.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(3.0)
        os._exit(70)

    # -- callbacks ----------------------------------------------------------------------

    def _input_loop(self) -> None:
        acks: list[bytes] = []
        while True:
            with self._inputs_ready:
                while not self._inputs:
                    if acks:
                        break
                    self._inputs_ready.wait()
                item = self._inputs.popleft() if self._inputs else None
            if item is None:
                self._flush(acks)
                continue
            msgid, port, msg = item
            error, result = self._run_input(port, msg)
            if error is None and result is None:
                acks.append(values.pack_ok(msgid))
            else:
                try:
                    acks.append(values.pack([RESPONSE, msgid, error, result]))
                except TypeError:
                    acks.append(values.pack([RESPONSE, msgid, error, None]))
            # Answer in batches while more inputs wait, at once when none do.
            if len(acks) >= self._ack_batch:
                self._flush(acks)

    def _flush(self, acks: list[bytes]) -> None:
        data = b"".join(acks)
        acks.clear()
        with contextlib.suppress(_Disconnected):
            self._send(data)

    def _run_input(self, port: int, msg: Any) -> tuple[Any, Any]:
        if self._on_input is None:
            return None, None
        try:
            return None, self._on_input(self.node_info(), port, msg)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            text = self._report("nodeInput", exc)
            return {"faultCode": -32500, "faultString": text}, None

    def _queue_events(self, events: list[list[Any]]) -> None:
        with self._events_ready:
            room = _EVENT_QUEUE_LIMIT - len(self._events)
            if len(events) > room:
                before = self._events_dropped
                self._events_dropped += len(events) - max(room, 0)
                events = events[: max(room, 0)]
                if before == 0 or self._events_dropped // 1000 != before // 1000:
                    warn(
                        f"eventHandler is too slow: {self._events_dropped} event(s) dropped "
                        f"(more than {_EVENT_QUEUE_LIMIT} waiting)"
                    )
            if events:
                self._events.extend(events)
                self._events_ready.notify()

    def _event_loop(self) -> None:
        while True:
            with self._events_ready:
                while not self._events:
                    self._events_ready.wait()
                params = self._events.popleft()
            if self._on_event is None:
                continue
            try:
                self._on_event(*params)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._report("eventHandler", exc)

    def _report(self, where: str, exc: BaseException) -> str:
        """Log a callback's exception on stderr (traceback) and via nodeLog level 2."""
        text = f"{where} raised {type(exc).__name__}: {exc}"
        warn(f"exception in {where}:\n{traceback.format_exc()}")
        with contextlib.suppress(Exception):
            self.post("nodeLog", [self.node_id, 2, text])
        return text
