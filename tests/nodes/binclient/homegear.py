"""A pure-Python stand-in for the real ``homegear`` module, for hadaemon's tests only.

The real module is a C++ extension over libhomegear-ipc; this one speaks Homegear binary
RPC exactly as it does (``homegear_wire`` for the bytes), so that the node test suite can
run real node processes on the binary wire:

- ``Homegear(socketPath, eventHandler, nodeId, nodeInput)``: the socket path may be
  wrapped in double quotes (stripped); it connects (two attempts, 2 s apart), its only
  call on connect is ``setPid(os.getpid())``, and the constructor returns once that was
  answered or after 2 s. After a lost connection it reconnects every 10 s.
- Any other attribute is an RPC call: ``[threadId, packetId, [args]]`` with the calling
  thread's id and a per-process counter, both Integer64; the answer is matched by thread
  and packet id, so answers may come in any order. The eleven node methods get the node
  id first. A fault (a ``{faultCode, faultString}`` struct) raises
  ``Exception(faultString)``; while not connected a call returns None.
- The daemon's calls (``[packetId, [args]]``) run on a pool of ten threads, as in the real
  client: ``ping`` (Void), ``broadcastEvent(source, peerId, channel, [names], [values])``
  (the event handler once per name; lists of unequal length are never answered),
  ``nodeInput(nodeInfo, index, msg)`` (answered with Void once the callback returned;
  its return value and any exception vanish). Unknown methods get fault -32601.

Deliberate differences, none of them on the wire: the callbacks may be None (several
test nodes pass None where the real module insists on a callable), three constructor
arguments are accepted, calls give up after 60 s (the real client waits forever), and
the daemon's calls are served only once the script holds the object (its first use, or
0.1 s after the constructor returned; the real module answers at once, a race its
callbacks that use the object are exposed to).
"""

import contextlib
import os
import queue
import socket
import threading
import time

import homegear_wire as wire

NODE_METHODS = frozenset((
    "nodeOutput", "nodeLog", "nodeEvent", "getNodeData", "setNodeData", "getFlowData",
    "setFlowData", "getGlobalData", "setGlobalData", "getNodeCredentials",
    "setNodeCredentials",
))
POOL_THREADS = 10
CALL_TIMEOUT = 60.0
_FAULT_KEYS = {"faultCode", "faultString"}


def _is_fault(value):
    return isinstance(value, dict) and set(value) == _FAULT_KEYS


class _Client:
    """The connection, its reader thread and the pool for the daemon's calls."""

    def __init__(self, path, on_event, on_input):
        self.path = path
        self.on_event = on_event
        self.on_input = on_input
        self.sock = None
        self.send_lock = threading.Lock()
        self.connected = False
        self.connected_event = threading.Event()
        self.packet_ids = iter(range(1 << 31))
        self.id_lock = threading.Lock()
        self.waiting = {}  # (threadId, packetId) -> [event, response]
        self.waiting_lock = threading.Lock()
        self.requests = queue.Queue()
        self.serving = threading.Event()
        for _ in range(POOL_THREADS):
            threading.Thread(target=self._worker, daemon=True).start()
        threading.Thread(target=self._main, daemon=True).start()

    # -- connection ------------------------------------------------------------------

    def _connect(self):
        for attempt in range(2):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                if attempt == 0:
                    time.sleep(2.0)
                continue
            self.sock = sock
            threading.Thread(target=self._init, daemon=True).start()
            return True
        return False

    def _init(self):
        result = self.invoke("setPid", [os.getpid()], require_connected=False)
        if _is_fault(result):
            self._close()
            return
        self.connected = True
        self.connected_event.set()

    def _close(self):
        self.connected = False
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        with self.waiting_lock:
            for slot in self.waiting.values():
                slot[0].set()

    def _main(self):
        while True:
            if self.sock is None and not self._connect():
                time.sleep(10.0)
                continue
            stream = wire.Stream()
            sock = self.sock
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    for flag, body, _raw in stream.feed(data):
                        self._packet(flag, body)
            except (OSError, ValueError):
                pass
            self._close()
            time.sleep(10.0)

    def _packet(self, flag, body):
        try:
            parsed = wire.parse(flag, body)
        except wire.Undecodable:
            return  # the real module cannot convert it: the message is lost
        if parsed[0] == "request":
            self.requests.put((parsed[1], parsed[2]))
            return
        value = parsed[1]
        if not isinstance(value, list) or len(value) < 3:
            return
        with self.waiting_lock:
            slot = self.waiting.get((value[0], value[1]))
            if slot is not None:
                slot[1] = value
                slot[0].set()

    def send(self, data):
        sock = self.sock
        if sock is None:
            return False
        with self.send_lock:
            try:
                sock.sendall(data)
            except OSError:
                return False
        return True

    # -- calls --------------------------------------------------------------------------

    def invoke(self, method, params, require_connected=True):
        if require_connected and not self.connected:
            return None
        thread_id = threading.get_ident()  # pthread_self(), as the real client
        with self.id_lock:
            packet_id = next(self.packet_ids)
        slot = [threading.Event(), None]
        with self.waiting_lock:
            self.waiting[(thread_id, packet_id)] = slot
        try:
            if not self.send(wire.request(method, [thread_id, packet_id, list(params)])):
                return {"faultCode": -32500, "faultString": "Unknown application error."}
            slot[0].wait(CALL_TIMEOUT)
        finally:
            with self.waiting_lock:
                self.waiting.pop((thread_id, packet_id), None)
        answer = slot[1]
        if answer is None or len(answer) != 3:
            return {"faultCode": -1, "faultString": "No response received."}
        return answer[2]

    # -- the daemon's calls -------------------------------------------------------------

    def _worker(self):
        self.serving.wait()
        while True:
            method, params = self.requests.get()
            if len(params) < 2:
                continue  # the real client logs "Wrong parameter count" and never answers
            packet_id, args = params[0], params[1]
            result = self._local(method, args if isinstance(args, list) else [])
            if result is not _NO_ANSWER:
                self.send(wire.response([packet_id, result]))

    def _local(self, method, args):
        if method == "ping":
            return None
        if method == "broadcastEvent":
            if len(args) != 5:
                return {"faultCode": -1, "faultString": "Wrong parameter count."}
            source, peer_id, channel, names, values = args
            if len(names) != len(values):
                return _NO_ANSWER  # the real client runs off the end of the shorter list
            for name, value in zip(names, values, strict=True):
                if self.on_event is not None:
                    with contextlib.suppress(Exception):  # the real module loses it
                        self.on_event(source, peer_id, channel, name, value)
            return None
        if method == "nodeInput":
            if len(args) != 3:
                return {"faultCode": -1, "faultString": "Wrong parameter count."}
            if self.on_input is not None:
                with contextlib.suppress(Exception):  # the real module loses it silently
                    self.on_input(args[0], args[1], args[2])
            return None
        return {"faultCode": -32601, "faultString": ": Requested method not found."}


_NO_ANSWER = object()
_clients = []  # one connection per process, as the real module's


class Homegear:
    """Node-BLUE's node API over Homegear binary RPC (see the module docstring)."""

    def __init__(self, socketPath, eventHandler=None, nodeId=None, nodeInput=None):
        path = str(socketPath)
        if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
            path = path[1:-1]  # Homegear passes it quoted
        self._node_id = nodeId or ""
        if not _clients:
            client = _Client(path, eventHandler, nodeInput)
            _clients.append(client)
            client.connected_event.wait(2.0)
            timer = threading.Timer(0.1, client.serving.set)
            timer.daemon = True
            timer.start()
        self._client = _clients[0]

    def connected(self):
        self._client.serving.set()
        return self._client.connected

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def method(*args):
            client = self._client
            client.serving.set()
            if not client.connected:
                return None
            params = list(args)
            if name in NODE_METHODS:
                if not self._node_id:
                    raise Exception("Node ID was not set in Object constructor.")
                params.insert(0, self._node_id)
            result = client.invoke(name, params)
            if _is_fault(result):
                raise Exception(result["faultString"])
            return result

        method.__name__ = name
        return method
