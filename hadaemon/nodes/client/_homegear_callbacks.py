"""The node's callbacks, run for the daemon's messages on the client's pool of threads.

``nodeInput`` and ``eventHandler`` each run in arrival order on a lane of their own
(``_homegear_pool``: one at a time while they return promptly, overlapping only when one
blocks; startUpComplete never waits behind other events). Inputs the daemon sent as
notifications are counted back with ``inputDone(handled, failed)``; an input sent as a
request (a sender waits for its value) is answered when its callback returned. A
callback's exception is printed with its traceback and reported with ``nodeLog`` level 2.

Python 3.7+, standard library only (plus msgpack when present).
"""

from __future__ import annotations

import contextlib
import sys
import threading

try:
    from . import _homegear_pool as pool
    from . import _homegear_values as values
    from ._homegear_outbox import NOW, Disconnected
    from ._homegear_wire import NOTIFICATION, RESPONSE
except ImportError:
    import _homegear_pool as pool  # type: ignore[no-redef, import-not-found]
    import _homegear_values as values  # type: ignore[no-redef, import-not-found]
    from _homegear_outbox import NOW, Disconnected  # type: ignore[no-redef, import-not-found]
    from _homegear_wire import (  # type: ignore[no-redef, import-not-found]
        NOTIFICATION,
        RESPONSE,
    )

TYPE_CHECKING = False  # typing is not imported at run time (a node's memory)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._homegear_outbox import Outbox

EVENT_QUEUE_LIMIT = 10000  # events waiting for a slow eventHandler before some are dropped
ACK_BATCH = 64  # notified inputs handled before the daemon is told (at most)


def warn(text: str) -> None:
    """A line on stderr; the daemon logs a node's stderr at error level, tagged."""
    try:
        sys.stderr.write(f"homegear: {text}\n")
        sys.stderr.flush()
    except Exception:
        pass


def traceback_text() -> str:
    """The traceback of the exception being handled (traceback imported when needed)."""
    import traceback

    return traceback.format_exc()


class Callbacks:
    """``on_input(nodeInfo, port, msg)`` and ``on_event(*params)`` on the pool (see the
    module); ``node_info()`` gives each input a fresh nodeInfo, ``log_error(text)``
    reports a callback's exception to the daemon. Set :attr:`outbox` before use."""

    def __init__(
        self,
        on_input: Callable[[Any, int, Any], Any] | None,
        on_event: Callable[..., Any] | None,
        node_info: Callable[[], Any],
        log_error: Callable[[str], None],
    ) -> None:
        self._on_input = on_input
        self._on_event = on_event
        self._node_info = node_info
        self._log_error = log_error
        self.outbox: Outbox = None  # type: ignore[assignment]
        # Inputs are (generation, msgid or None for a notification, port, msg), events
        # their parameters; each kind in order on its lane of the pool.
        self._input_lane = pool.Lane(self._run_input_job, self._inputs_drained)
        self._event_lane = pool.Lane(self._run_event)
        self.pool = pool.Pool((self._input_lane, self._event_lane))
        self._events_dropped = 0
        # Notified inputs handled and failed on this generation, not told yet.
        self._handled = self._failed = 0
        self.done_lock = threading.Lock()
        """Held while the connection's generation changes (before the outbox's lock)."""
        self.ack_batch = ACK_BATCH

    # -- the reading thread hands over ---------------------------------------------------

    def inputs(self, batch: list[tuple[int, Any, Any, Any]]) -> None:
        """On the reading thread, which runs them itself while it can (_homegear_pool)."""
        self.pool.run_here(self._input_lane, batch)

    def events(self, batch: list[list[Any]]) -> None:
        if self._on_event is None:
            return
        dropped = self.pool.submit(self._event_lane, batch, EVENT_QUEUE_LIMIT)
        if dropped:
            before = self._events_dropped
            self._events_dropped += dropped
            if before == 0 or self._events_dropped // 1000 != before // 1000:
                warn(
                    f"eventHandler is too slow: {self._events_dropped} event(s) dropped "
                    f"(more than {EVENT_QUEUE_LIMIT} waiting)"
                )

    def startup_complete(self, params: list[Any]) -> None:
        """What a node blocked in a callback may be waiting for: it never queues behind
        other callbacks (see _homegear_pool)."""
        if self._on_event is not None:
            self.pool.submit_first(self._event_lane, params)

    def disconnected(self) -> None:
        """Under :attr:`done_lock`: nothing counted is told on the next connection."""
        self._handled = self._failed = 0

    def drop_inputs(self) -> None:
        """Inputs not handled yet went with the connection (the daemon counts them lost)."""
        self.pool.clear(self._input_lane)

    # -- on the pool's threads -----------------------------------------------------------

    def _run_input_job(self, job: tuple[int, Any, Any, Any]) -> None:
        """Run one input (on a pool thread) and tell the daemon.

        Inputs sent as notifications are counted: the daemon learns how many were
        handled (and how many raised) with ``inputDone(handled, failed)`` once
        ``ack_batch`` of them were, or none waits (that reopens its window). Requests (a
        sender waits for the value) get their own answer when their callback returned.
        """
        generation, msgid, port, msg = job
        outbox = self.outbox
        if generation != outbox.generation:
            return  # the connection went, and this input with it
        error, result = self._run_input(port, msg)
        if msgid is not None:
            with contextlib.suppress(Disconnected):
                outbox.send(_response(msgid, error, result), NOW, generation)
            return
        with self.done_lock:
            if generation != outbox.generation:
                return
            if error is None:
                self._handled += 1
            else:
                self._failed += 1
            if self._handled + self._failed < self.ack_batch:
                return
        self._inputs_drained()

    def _inputs_drained(self) -> None:
        """Tell the daemon how many notified inputs were handled since it last heard."""
        with self.done_lock:
            handled, failed, generation = self._handled, self._failed, self.outbox.generation
            if not (handled or failed):
                return
            self._handled = self._failed = 0
        with contextlib.suppress(Disconnected):
            self.outbox.send(_input_done(handled, failed), NOW, generation)

    def _run_input(self, port: int, msg: Any) -> tuple[Any, Any]:
        if self._on_input is None:
            return None, None
        try:
            return None, self._on_input(self._node_info(), port, msg)
        except BaseException as exc:
            text = self._report("nodeInput", exc)
            return {"faultCode": -32500, "faultString": text}, None

    def _run_event(self, params: list[Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(*params)
        except BaseException as exc:
            self._report("eventHandler", exc)

    def _report(self, where: str, exc: BaseException) -> str:
        """Log a callback's exception on stderr (traceback) and via nodeLog level 2."""
        text = f"{where} raised {type(exc).__name__}: {exc}"
        warn(f"exception in {where}:\n{traceback_text()}")
        with contextlib.suppress(Exception):
            self._log_error(text)
        return text


def _input_done(handled: int, failed: int) -> bytes:
    """``inputDone(handled, failed)``: that many nodeInput notifications were handled."""
    return values.pack([NOTIFICATION, "inputDone", [handled, failed]])


def _response(msgid: Any, error: Any, result: Any) -> bytes:
    """The answer to a nodeInput request; a result outside the value model is refused."""
    if error is None and result is None:
        return values.pack_ok(msgid)
    try:
        return values.pack([RESPONSE, msgid, error, result])
    except TypeError:
        return values.pack([RESPONSE, msgid, error, None])
