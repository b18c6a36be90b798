"""``from homegear import Homegear``: Node-BLUE's Python node API, served by hadaemon.

Node files written for Homegear run unchanged::

    hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
    while hg.connected():
        time.sleep(1)

- The constructor connects and waits up to ~2 s; it returns anyway and keeps
  reconnecting in the background. ``connected()`` tells the state.
- Any other attribute is an RPC method: ``hg.getValue(peerId, channel, name)``. A fault
  raises ``Exception(faultString)``; while disconnected a call returns None; a call
  without an answer within ``callTimeout`` seconds raises ``TimeoutError``.
- The eleven node methods get the node id put first (``hg.nodeOutput(0, msg)`` is sent
  as ``nodeOutput(nodeId, 0, msg)``).
- ``eventHandler(eventSource, peerId, channel, variableName, value)`` and
  ``nodeInput(nodeInfo, inputIndex, msg)`` run on a pool of up to ten threads, as in
  Homegear's client: each kind in arrival order and one at a time while they return
  within half a second; a callback that blocks longer lets the next one start on
  another thread. startUpComplete never waits behind other callbacks.
  An exception in them is printed to stderr with its traceback and reported with
  ``nodeLog`` level 2 (the real module lost them silently).
- ``nodeOutput(index, msg)`` returns once the message is on its way (the daemon's answer
  is not awaited, so a node is not held to one round trip per message); pass
  ``synchronous=True`` to wait for the daemon's answer and get its errors raised.
- ``asyncio.get_event_loop()`` in the main thread, before any loop was set, creates and
  sets one silently, as Pythons before 3.12 did (the Node-BLUE asyncio template relies
  on it); a node that never imports asyncio is not affected.
- Values are exact both ways: None, bool, int of any size, float (every bit), str (NUL
  and lone surrogates included), bytes, list (tuples arrive as lists), dict with str or
  int keys, nested.

Runs under any Python 3.7+ without Twisted or hadaemon; uses msgpack when installed and
a bundled pure-Python codec otherwise.
"""

from __future__ import annotations

import os
import sys
import threading

# The client's bytecode is written for the next node even under PYTHONDONTWRITEBYTECODE:
# compiling it from source costs every node ~2 MiB it keeps and ~15 ms (the daemon
# writes it for its own Python; this covers a node's other interpreter).
_dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, False
try:
    from . import _homegear_loop as _loop
    from . import _homegear_rpc as _rpc
except ImportError:
    import _homegear_loop as _loop  # type: ignore[no-redef, import-not-found]
    import _homegear_rpc as _rpc  # type: ignore[no-redef, import-not-found]
finally:
    sys.dont_write_bytecode = _dont_write

TYPE_CHECKING = False  # typing is not imported at run time (a node's memory)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["Homegear"]

# asyncio.get_event_loop() in the main thread works silently, as before Python 3.12.
_loop.install()

NODE_METHODS = frozenset(
    {
        "nodeOutput",
        "nodeLog",
        "nodeEvent",
        "getNodeData",
        "setNodeData",
        "getFlowData",
        "setFlowData",
        "getGlobalData",
        "setGlobalData",
        "getNodeCredentials",
        "setNodeCredentials",
    }
)
"""The methods that get the node id prepended on the wire."""

_CONNECT_WAIT = 2.0
_SERVE_DELAY = 0.1
_DEFAULT_CALL_TIMEOUT = 30.0


def _strip_quotes(path: str) -> str:
    # Homegear passes the socket path wrapped in literal double quotes.
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        return path[1:-1]
    return path


def _default_timeout() -> float:
    try:
        return float(os.environ.get(_rpc.ENV_CALL_TIMEOUT, _DEFAULT_CALL_TIMEOUT))
    except ValueError:
        return _DEFAULT_CALL_TIMEOUT


class Homegear:
    """A node's connection to the daemon (see the module docstring)."""

    def __init__(
        self,
        socketPath: str,
        eventHandler: Callable[..., Any] | None = None,
        nodeId: str | None = None,
        nodeInput: Callable[[Any, int, Any], Any] | None = None,
        callTimeout: float | None = None,
    ) -> None:
        self._node_id = nodeId or ""
        # The token proves to the daemon which node this process is (read from its pipe
        # as the client was imported, see _homegear_rpc._take_token).
        token = _rpc.TOKEN
        identity = self._node_id or os.environ.get(_rpc.ENV_NODE_ID, "")
        self._connection = _rpc.Connection(
            _strip_quotes(str(socketPath)),
            identity,
            token,
            nodeInput,
            eventHandler,
            _default_timeout() if callTimeout is None else float(callTimeout),
        )
        self._connection.start()
        self._connection.wait_connected(_CONNECT_WAIT)
        # Inputs and events start flowing once this node answers the daemon's ping. Their
        # callbacks usually use the object the script assigns (``hg = Homegear(...)``),
        # which happens only after this constructor returned: so the answer waits for
        # the first use of the object (``hg.connected()`` in the templates), or 0.1 s.
        timer = threading.Timer(_SERVE_DELAY, self._connection.serve)
        timer.daemon = True
        timer.start()

    def connected(self) -> bool:
        """True while connected and authenticated."""
        self._connection.serve()
        return self._connection.connected()

    def nodeOutput(self, index: int, msg: Any, synchronous: bool = False) -> None:
        """Send ``msg`` on output ``index`` (see the module docstring)."""
        connection = self._connection
        if not connection._serving:
            connection.serve()
        if synchronous:
            connection.call("nodeOutput", [self._require_node_id(), index, msg, True])
        else:
            connection.post_output(self._node_id or self._require_node_id(), index, msg)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def method(*args: Any) -> Any:
            self._connection.serve()
            params = list(args)
            if name in NODE_METHODS:
                params.insert(0, self._require_node_id())
            return self._connection.call(name, params)

        method.__name__ = name
        return method

    def _require_node_id(self) -> str:
        if not self._node_id:
            raise Exception("Node ID was not set in Object constructor.")
        return self._node_id
