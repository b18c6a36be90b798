"""Test node: reports how its interpreter looks from its first line on, to compare a node
forked from the spawner with one exec'd (tests/nodes/test_spawn_modes.py); on output 0
at startUpComplete. With $FRESH_EXIT set it does not connect but ends as told there
(see ending() below)."""
import sys

FIRST = {
    "forked": "fcntl" in sys.modules,  # (imported by the spawner only)
    "name": __name__,
    "file": __file__,
    "globals": sorted(globals()),
    "dunders": [repr(__doc__), repr(__package__), repr(__spec__), repr(__cached__),
                type(__loader__).__name__, __loader__.name, __loader__.path,
                repr(__annotations__), __builtins__ is sys.modules["builtins"]],
    "argv": list(sys.argv),
    "orig_argv": list(sys.orig_argv),
    "path": list(sys.path),
}

import atexit  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def fds_above_3():
    found = []
    for fd in range(4, 256):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    return found


def ending(how):
    """Ends the node without connecting: the interpreter's own ways to end."""
    atexit.register(print, "atexit ran", flush=True)
    go = threading.Event()  # (what the main thread printed comes first)
    worker = threading.Thread(target=lambda: (go.wait(), time.sleep(0.2),
                                              print("thread done")))
    worker.start()  # a non-daemon thread: joined before the atexit handlers run
    if how == "raise":
        go.set()
        raise ValueError("boom")
    if how == "exit-text":
        go.set()
        sys.exit("bye")
    if how == "exit-5":
        go.set()
        sys.exit(5)
    if how == "sigint-caught":
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(10)
        except KeyboardInterrupt:
            print("KeyboardInterrupt caught")
        go.set()
        sys.exit(7)
    if how == "sigint":
        go.set()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)
    if how == "sigterm":
        go.set()
        worker.join()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
    go.set()
    print("the end")


if os.environ.get("FRESH_EXIT"):
    ending(os.environ["FRESH_EXIT"])
    sys.exit()

FIRST["fds"] = fds_above_3()
import asyncio  # noqa: E402

from homegear import Homegear  # noqa: E402


def report():
    streams = {}
    for name in ("stdin", "stdout", "stderr"):
        stream = getattr(sys, name)
        raw = getattr(stream.buffer, "raw", stream.buffer)
        streams[name] = [type(stream.buffer).__name__, raw.name, stream.encoding,
                         stream.errors, stream.line_buffering, stream.write_through,
                         stream.mode, stream.fileno(), stream is getattr(sys, f"__{name}__")]
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().rstrip(b"\0").split(b"\0")  # (forked: NUL-padded)
    return {
        **FIRST,
        "cmdline": [part.decode() for part in cmdline],
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "signals": {sig.name: repr(signal.getsignal(sig)) for sig in (
            signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP,
            signal.SIGQUIT, signal.SIGTSTP, signal.SIGCHLD, signal.SIGUSR1)},
        "blocked": sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "leader": os.getpgid(0) == os.getpid(),
        "executable": sys.executable,
        "flags": list(sys.flags),
        "streams": streams,
        "atexit": atexit._ncallbacks(),
        "excepthook": sys.excepthook is sys.__excepthook__,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "asyncio": asyncio.run(asyncio.sleep(0, "asyncio ran")),
        "tz": list(time.tzname),
        "hash": hash("zygote"),
        "fcntl": getattr(__import__("fcntl"), "__file__", "built-in"),  # (Debian's: built in)
    }


def eventHandler(eventSource, peerId, channel, variableName, value):
    if variableName == "startUpComplete":
        hg.nodeOutput(0, {"payload": report()})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
