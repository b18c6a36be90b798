"""What a node sends to the daemon: queued in order, written by whichever thread should.

One :class:`Outbox` per connection object, for every connection it makes in turn:

- whoever writes takes the write lock first and then the whole queue, so batches go out
  in the order they were queued;
- the *writer* thread writes what the reading thread queued (that thread never waits
  for the socket) and batches of a callback's outputs; a callback's output on its
  own (a relay's answer to one input) is written by the callback's thread at once,
  without waking the writer (see ``_ALONE``);
- notifications cost a credit each, which the daemon grants back as it handles them
  (its flow control): without credit a posting thread waits;
- ``generation`` counts connects and disconnects: data meant for one connection is
  never written on the next.

Python 3.7+, standard library only.
"""

from __future__ import annotations

import _socket
import contextlib
import threading
import time

TYPE_CHECKING = False  # typing is not imported at run time (a node's memory)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

QUEUE, BATCH, NOW = 0, 1, 2  # how send gets data written (see there)
_WRITE_BATCH = 64  # messages a posting thread queues before it writes them itself
# A post this long after the last one that found nothing queued is written by the
# posting thread itself, at once: a message on its own (a relay's answer to one input)
# does not wait for the writer thread to wake up. Closer posts (a producer's loop) are
# batched by the writer thread as before. benchmarks/nodes_vs_nodered.py, MQTT round
# trip, interleaved, with _homegear_pool's fewer wake-ups: the two nodes' threads slept
# 10.6-11.6 times per round trip against 20.7-24.3, their CPU 476-547 against 641-794 us.
_ALONE = 0.0001
_monotonic = time.monotonic
_get_ident = threading.get_ident
_DONTWAIT = _socket.MSG_DONTWAIT


class Disconnected(Exception):
    """Not connected (any more): what was to be sent is dropped."""


class Outbox:
    """The outgoing queue, the writer thread and the daemon's credits (see the module)."""

    def __init__(self, pool: Any, connected: Callable[[], bool], call_timeout: float) -> None:
        self._pool = pool
        self._connected = connected
        self.call_timeout = call_timeout
        self._sock: _socket.socket | None = None
        self._out: list[bytes] = []
        self.lock = threading.Lock()
        """Held to queue; ``generation`` changes under it."""
        self._out_ready = threading.Condition(self.lock)
        self._write_lock = threading.Lock()
        self.generation = 0
        # Notifications the daemon is ready to take (see post). Under lock: taking a
        # credit and queueing the message is one lock round per message.
        self._credits = 0
        self._credit_ready = threading.Condition(self.lock)
        self._posted = 0.0  # when a post last found nothing queued

    # -- connections -----------------------------------------------------------------

    def attach(self, sock: _socket.socket) -> None:
        """A new connection: a new generation, nothing of the last one queued."""
        with self.lock:
            self.generation += 1
            self._out.clear()
            self._sock = sock

    def detach(self) -> None:
        """The connection went: a new generation, nothing queued, no credit (a new
        connection brings fresh credit); a posting thread waiting for one wakes up."""
        with self.lock:
            self.generation += 1
            self._sock = None
            self._out.clear()
        with self._credit_ready:
            self._credits = 0
            self._credit_ready.notify_all()

    def grant(self, credits: int) -> None:
        with self._credit_ready:
            self._credits += credits
            self._credit_ready.notify_all()

    def start(self) -> None:
        threading.Thread(target=self._write_loop, name="homegear-writer", daemon=True).start()

    # -- sending -----------------------------------------------------------------------

    def post(self, method: str, data: bytes) -> None:
        """Take a credit and queue ``data``; written by this thread once a batch piled
        up (the writer thread takes what is left when this one stops posting)."""
        with self.lock:
            # The usual case, in one lock round: connected, with credit.
            if self._credits > 0 and self._sock is not None:
                self._credits -= 1
                out = self._out
                out.append(data)
                queued = len(out)
                if queued == 1:
                    now = _monotonic()
                    # (Never on the reading thread outside a callback: it must not wait
                    # for the socket. In a callback it writes without waiting, see write.)
                    me = _get_ident()
                    pool = self._pool
                    alone = now - self._posted > _ALONE and (
                        pool.reader != me or pool.inline == me)
                    self._posted = now
                    if alone:
                        queued = _WRITE_BATCH  # a message on its own: written below
                    else:
                        self._out_ready.notify()
                if queued < _WRITE_BATCH:
                    return
            else:
                queued = 0
        if queued:
            self.write()
            return
        # No credit, or the connection just went: wait for a credit (False if gone).
        if not self._wait_for_credit(method):
            return
        with contextlib.suppress(Disconnected):
            self.send(data, BATCH)

    def _wait_for_credit(self, method: str) -> bool:
        """Wait for a credit and take it; False if the connection went meanwhile."""
        # What is queued is what the daemon must see to grant more: out with it first.
        self.write()
        lane = self._pool.pause()
        try:
            return self._take_credit(method)
        finally:
            self._pool.resume(lane)

    def _take_credit(self, method: str) -> bool:
        with self._credit_ready:
            deadline = time.monotonic() + self.call_timeout
            while self._credits <= 0 and self._connected():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{method}: the daemon took none of the last calls within "
                        f"{self.call_timeout:g} s"
                    )
                self._credit_ready.wait(left)
            if not self._connected():
                return False
            self._credits -= 1
            return True

    def send(self, data: bytes, write: int = QUEUE, generation: int | None = None) -> None:
        """Queue ``data`` (raises :class:`Disconnected` when not connected).

        ``QUEUE``: the writer thread writes it, with whatever else was queued, once it
        gets to run (the reading thread sends so: it must never wait for the
        socket). ``BATCH``: the calling thread writes itself once enough has piled up.
        ``NOW``: the calling thread writes at once (it is about to wait anyway). With
        ``generation``, data of an earlier connection is dropped instead.
        """
        with self.lock:
            if self._sock is None or (generation is not None and generation != self.generation):
                raise Disconnected
            out = self._out
            out.append(data)
            if write == BATCH:
                if len(out) >= _WRITE_BATCH:
                    write = NOW
                elif len(out) == 1:
                    self._out_ready.notify()
            elif write == QUEUE and len(out) == 1:
                self._out_ready.notify()
        if write == NOW:
            self.write()

    def write(self) -> None:
        """Write everything queued.

        A callback writing here waits for the daemon to read: its lane's clock stops. The
        reading thread never waits for the socket: it writes what the socket takes at
        once, and for the rest, when it runs a callback itself, gives reading up first
        (``_homegear_pool``), else leaves it to the writer thread.
        """
        me = _get_ident()
        pool = self._pool
        if pool.reader == me:
            if not self._write_lock.acquire(False):  # another thread writes
                if pool.inline != me:
                    with self.lock:
                        self._out_ready.notify()  # what is queued waits for the writer
                    return
            else:
                try:
                    self._write_at_once(pool.inline == me)
                finally:
                    self._write_lock.release()
                return
        lane = pool.pause()
        try:
            with self._write_lock:
                data, sock = self._take()
                if data and sock is not None:
                    with contextlib.suppress(OSError):  # the reading thread sees the loss
                        sock.sendall(data)
        finally:
            pool.resume(lane)

    def _take(self) -> tuple[bytes, _socket.socket | None]:
        """Everything queued, as one write, and the socket to write it to (under the
        write lock: batches leave in the order they were taken)."""
        with self.lock:
            batch, self._out = self._out, []
            sock = self._sock
        if not batch:
            return b"", sock
        return (b"".join(batch) if len(batch) > 1 else batch[0]), sock

    def _write_at_once(self, inline: bool) -> None:
        """The reading thread's write (under the write lock): what the socket takes now;
        the rest is left queued for the writer thread, or, ``inline`` (in a callback),
        written once this thread gave reading up."""
        data, sock = self._take()
        if not data or sock is None:
            return
        try:
            sent = sock.send(data, _DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the reading thread sees the loss
        if sent == len(data):
            return
        if not inline:
            with self.lock:
                if self._sock is sock:
                    self._out.insert(0, data[sent:])  # first: nothing was written since
                    self._out_ready.notify()
            return
        lane = self._pool.pause()  # gives reading up
        try:
            with contextlib.suppress(OSError):
                sock.sendall(data[sent:])
        finally:
            self._pool.resume(lane)

    def _write_loop(self) -> None:
        # Writes what the other threads queued, as soon as it gets to run: whatever was
        # queued meanwhile goes out together.
        while True:
            with self._out_ready:
                while not self._out:
                    self._out_ready.wait()
            self.write()
