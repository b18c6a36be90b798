"""The node side of hadaemon's node wire: msgpack-rpc over the daemon's Unix socket.

Threads (all daemon threads, so they never keep a finished node alive):

- the *reading* thread (here) connects, authenticates with the node's token
  (``_homegear_handover`` took it as the client was imported), reads every message and
  hands it on. What it reads goes through the shape checks the daemon uses too
  (``_homegear_wire``: one call of :meth:`Connection.request`,
  :meth:`~Connection.response` or :meth:`~Connection.notification` per message). It
  runs an input's ``nodeInput`` itself while the inputs' lane is free (no thread
  wakes up between an input and its callback), and gives reading up to another thread
  before such a callback waits for the daemon or once it has run half a second
  (``_homegear_pool``): answers to calls always get through, whatever the callbacks do,
  and it never waits for the socket;
- the *writer* thread (``_homegear_outbox``) writes what the reading thread queued, and
  batches of a callback's outputs; a callback's output on its own (a relay's answer to
  one input) is written by the callback's thread at once, without waking the writer;
  the daemon's credits are kept there too;
- a pool of up to ten threads runs the other callbacks (``_homegear_callbacks`` on
  ``_homegear_pool``): ``nodeInput`` and ``eventHandler`` each in arrival order, one at
  a time while they return promptly, overlapping only when one blocks; each
  ``nodeInput`` request is answered when its callback returned (the daemon's window of
  in-flight inputs is the flow control).

Calls may come from any thread; the caller waits on a lock (the GIL is released) with a
timeout. Messages (msgpack-rpc): request ``[0, id, method, params]``, response
``[1, id, error, result]``, notification ``[2, method, params]``; an error is
``{"faultCode": int, "faultString": str}``.

Python 3.7+, standard library only (plus msgpack when present).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.py would bring enum
import _socket
import contextlib
import itertools
import os
import threading
import time

try:
    from . import _homegear_callbacks as callbacks
    from . import _homegear_handover as handover
    from . import _homegear_outbox as outbox
    from . import _homegear_values as values
    from ._homegear_wire import NOTIFICATION, REQUEST, RESPONSE, WireError, dispatch
except ImportError:
    import _homegear_callbacks as callbacks  # type: ignore[no-redef, import-not-found]
    import _homegear_handover as handover  # type: ignore[no-redef, import-not-found]
    import _homegear_outbox as outbox  # type: ignore[no-redef, import-not-found]
    import _homegear_values as values  # type: ignore[no-redef, import-not-found]
    from _homegear_wire import (  # type: ignore[no-redef, import-not-found]
        NOTIFICATION,
        REQUEST,
        RESPONSE,
        WireError,
        dispatch,
    )

# What the daemon handed this process (the daemon imports the names from here).
ENV_TOKEN_FD = handover.ENV_TOKEN_FD
TOKEN_FD = handover.TOKEN_FD
ENV_NODE_ID = handover.ENV_NODE_ID
ENV_DAEMON_PID = handover.ENV_DAEMON_PID
ENV_CALL_TIMEOUT = handover.ENV_CALL_TIMEOUT
DAEMON_PID = handover.DAEMON_PID
TOKEN = handover.TOKEN
_Disconnected = outbox.Disconnected
warn = callbacks.warn
_QUEUE, _BATCH, _NOW = outbox.QUEUE, outbox.BATCH, outbox.NOW

# What a node needs at run time only: typing, traceback, socket.py (selectors, enum)
# and signal.py are left out, or imported when first needed (an idle node's
# memory; see benchmarks/node_memory.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PROTOCOL_VERSION = 2  # 2: nodeInput may come as a notification, counted by inputDone
AUTH_REFUSED = -32001  # the daemon does not know this node/token: an orphan, exit

_RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)
_OUTPUT_HEAD = b"\x93\x02\xaanodeOutput\x93"  # [2, "nodeOutput", [nodeId, index, msg]]


def _fault_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("faultString", error))
    return str(error)


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


class _Handshake:
    """What the reading thread reads while it authenticates: the answer to
    ``authenticate`` (msgid 0) counts, anything else is ignored."""

    answered = False
    error: Any = None
    result: Any = None

    def response(self, msgid: int, error: Any, result: Any) -> None:
        if msgid == 0:
            self.answered, self.error, self.result = True, error, result

    def request(self, msgid: int, method: str, params: list[Any]) -> None:
        pass

    def notification(self, method: str, params: list[Any]) -> None:
        pass


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
        self.call_timeout = call_timeout
        self._daemon_pid = DAEMON_PID
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._connected = threading.Event()
        self._settled = threading.Event()  # connected, or refused for good
        self._closed = False
        self._node_info = values.copier(None)
        self._prefixes: dict[str, bytes] = {}
        self._link: tuple[_socket.socket, values.Unpacker] | None = None  # while connected
        # The callbacks, on their pool of threads.
        self._callbacks = callbacks.Callbacks(on_input, on_event, self.node_info,
                                              self._log_error)
        self._pool = self._callbacks.pool
        # What is sent, and the daemon's credits. Its generation is +1 at every connect
        # and disconnect (under the callbacks' done_lock and its lock): what was received
        # on one connection is never answered on another.
        self._outbox = self._callbacks.outbox = outbox.Outbox(
            self._pool, self.connected, call_timeout)
        self._send = self._outbox.send
        self._grant = self._outbox.grant
        # One read's inputs and events, handed to the pool together (see _read_buffered).
        self._inputs: list[tuple[int, Any, Any, Any]] = []
        self._events: list[list[Any]] = []
        self._threads_started = False
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
        self._pool.start_reading(self._run)
        self._outbox.start()

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
        return self._node_info()

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
            self._send(values.pack([REQUEST, msgid, method, params]), _NOW)
        except _Disconnected:
            self._forget(msgid)
            return None
        except BaseException:
            self._forget(msgid)
            raise
        limit = self.call_timeout if timeout is None else timeout
        lane = self._pool.pause()
        try:
            answered = pending.lock.acquire(timeout=limit if limit > 0 else -1)
        finally:
            self._pool.resume(lane)
        if not answered:
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
        if self.connected():
            self._outbox.post(method, values.pack([NOTIFICATION, method, params]))

    def post_output(self, node_id: str, index: Any, msg: Any) -> None:
        """``post("nodeOutput", [node_id, index, msg])``, with the constant part of the
        message packed once: ``benchmarks/shortcuts.py``, 0.7-1.4 us against 1.7-3.5 us
        packing the whole call, ~1 us of the ~5 us a message costs the two nodes in
        ``benchmarks/node_routing.py``."""
        if not self.connected():
            return
        prefix = self._prefixes.get(node_id)
        if prefix is None:
            prefix = self._prefixes[node_id] = _OUTPUT_HEAD + values.pack(node_id)
        self._outbox.post("nodeOutput", prefix + values.pack(index) + values.pack(msg))

    def _register(self) -> tuple[int, _Pending]:
        msgid = next(self._ids)
        pending = _Pending()
        with self._pending_lock:
            self._pending[msgid] = pending
        return msgid, pending

    def _forget(self, msgid: int) -> None:
        with self._pending_lock:
            self._pending.pop(msgid, None)

    # -- the reading thread ---------------------------------------------------------

    def _run(self) -> None:
        """The reading thread's work: connect, authenticate, read, reconnect. The thread
        that reads may change (``_homegear_pool``: it gives reading up while it runs a
        callback that must wait): this returns on the thread that gave it up, and runs
        on in the one that took it over, on the same connection."""
        attempt = 0
        while not self._closed:
            link = self._link
            if link is None:
                if self._daemon_gone():
                    self._fatal("the daemon that started this node is gone")
                    return
                try:
                    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                    sock.connect(self.path)
                except OSError:
                    sock.close()
                    time.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
                    attempt += 1
                    continue
                # Set before authenticating: the callbacks of what arrives with the
                # answer may run on this thread, and another one then reads on.
                link = self._link = (sock, values.Unpacker())
                fresh = True
            else:
                fresh = False
            sock, unpacker = link
            try:
                if fresh:
                    if not self._authenticate(sock, unpacker):
                        self._link = None
                        self._disconnected(sock)
                        return
                    attempt = 0
                if not self._read(sock, unpacker):
                    return  # another thread reads on
            except OSError:
                pass
            except Exception:
                warn("connection failed:\n" + callbacks.traceback_text())
            self._link = None
            self._disconnected(sock)
            if not self._closed:
                time.sleep(_RECONNECT_DELAYS[0])

    def _daemon_gone(self) -> bool:
        return self._daemon_pid is not None and os.getppid() != self._daemon_pid

    def _authenticate(self, sock: _socket.socket, unpacker: values.Unpacker) -> bool:
        info = {"pid": os.getpid(), "protocol": PROTOCOL_VERSION, "codec": values.BACKEND}
        sock.sendall(values.pack([REQUEST, 0, "authenticate", [self.node_id, self._token, info]]))
        while True:
            data = sock.recv(65536)
            if not data:
                raise OSError("connection closed during authentication")
            unpacker.feed(data)
            handshake = _Handshake()
            for message in unpacker:
                with contextlib.suppress(WireError):  # nothing else is expected before
                    dispatch(message, handshake)      # the answer: the rest is ignored
                if handshake.answered:
                    error, result = handshake.error, handshake.result
                    if error is not None:
                        code = error.get("faultCode") if isinstance(error, dict) else None
                        if code == AUTH_REFUSED:
                            self._fatal(f"the daemon refused this node: {_fault_text(error)}")
                            return False
                        raise OSError(f"authentication failed: {_fault_text(error)}")
                    if isinstance(result, dict):
                        self._node_info = values.copier(result.get("nodeInfo"))
                        credits = result.get("credits")
                        if isinstance(credits, int):
                            self._grant(credits)
                        window = result.get("window")
                        if isinstance(window, int) and window > 0:
                            # Answer while half the window is still being worked on,
                            # so that the daemon sends more before this thread is idle.
                            self._callbacks.ack_batch = max(
                                1, min(callbacks.ACK_BATCH, window // 2))
                    with self._callbacks.done_lock:
                        self._outbox.attach(sock)
                    self._connected.set()
                    self._settled.set()
                    # Anything that arrived with the answer (a ping, say) is handled now.
                    self._read_buffered(unpacker)
                    return True

    def _read(self, sock: _socket.socket, unpacker: values.Unpacker) -> bool:
        """Read until the connection ends (True) or this thread gave reading up (False)."""
        recv = sock.recv
        feed = unpacker.feed
        read_buffered = self._read_buffered
        reading = self._pool.reading
        while reading():
            data = recv(262144)
            if not data:
                return True
            feed(data)
            read_buffered(unpacker)
        return False

    def _read_buffered(self, unpacker: values.Unpacker) -> None:
        """Every complete message in ``unpacker``, one call of the methods below each
        (``_homegear_wire.dispatch``); what came in one read goes to the pool in one
        hand-over (events first: the inputs' callbacks may run on this thread, which may
        give reading up meanwhile)."""
        for message in unpacker:
            try:
                dispatch(message, self)
            except WireError as exc:
                warn(f"ignoring a message that is not msgpack-rpc: {exc}")
        if self._events:
            events, self._events = self._events, []
            self._callbacks.events(events)
        if self._inputs:
            inputs, self._inputs = self._inputs, []
            self._callbacks.inputs(inputs)

    # -- the daemon's messages, on the reading thread ------------------------------------

    def notification(self, method: str, params: list[Any]) -> None:
        # The most frequent message first: nodeInput as a notification (no answer wanted
        # but the count of handled inputs, see _run_input_job).
        if method == "nodeInput":
            if len(params) == 2:
                self._inputs.append((self._outbox.generation, None, params[0], params[1]))
        elif method == "event":
            if params[:2] == ["nodeBlue", 0] and params[3:4] == ["startUpComplete"]:
                self._callbacks.startup_complete(params)
            else:
                self._events.append(params)
        elif method == "credit" and params and isinstance(params[0], int):
            self._grant(params[0])
        elif method == "fault" and params:
            warn(f"a call failed: {params[0]}")
        elif method == "nodeInfo" and params:
            # The daemon's reload rewired this node: later callbacks get the new nodeInfo.
            self._node_info = values.copier(params[0])

    def request(self, msgid: int, method: str, params: list[Any]) -> None:
        if method == "nodeInput" and len(params) == 2:
            self._inputs.append((self._outbox.generation, msgid, params[0], params[1]))
        elif method == "ping":
            with self._serve_lock:
                if not self._serving:
                    self._held_pings.append(msgid)
                    return
            self._answer(msgid, None, True)
        else:
            self._answer(
                msgid, {"faultCode": -32601, "faultString": f"unknown method {method!r}"}, None
            )

    def response(self, msgid: int, error: Any, result: Any) -> None:
        with self._pending_lock:
            pending = self._pending.pop(msgid, None)
        if pending is not None:
            pending.resolve(error, result)

    def _answer(self, msgid: Any, error: Any, result: Any) -> None:
        with contextlib.suppress(_Disconnected):
            self._send(values.pack([RESPONSE, msgid, error, result]))

    def _disconnected(self, sock: _socket.socket) -> None:
        self._connected.clear()
        # Inputs not handled yet went with the connection (the daemon counts them lost),
        # and nothing queued for it is sent on the next one.
        with self._callbacks.done_lock:
            self._outbox.detach()
            self._callbacks.disconnected()
        self._callbacks.drop_inputs()
        with contextlib.suppress(OSError):
            sock.close()
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for waiter in pending.values():
            waiter.drop()
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
        os.kill(os.getpid(), _signal.SIGTERM)
        time.sleep(3.0)
        os._exit(70)

    def _log_error(self, text: str) -> None:
        """A callback's exception, reported to the daemon (``nodeLog`` level 2)."""
        self.post("nodeLog", [self.node_id, 2, text])
