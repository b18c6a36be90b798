"""Legacy programs embedding hadaemon; each scenario runs in a fresh process.

Usage: python scenarios.py SCENARIO WORKDIR. Prints progress lines the tests look for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import sys
import threading
import time
import warnings
from typing import Any

PLUGINS = pathlib.Path(__file__).resolve().parent / "plugins"
HOSTILE = pathlib.Path(__file__).resolve().parents[1] / "core" / "hostile" / "services"


def config(workdir: pathlib.Path, **extra: Any) -> dict[str, Any]:
    sections: dict[str, Any] = {
        "daemon": {
            "state_dir": str(workdir / "var"),
            "plugin_dirs": [str(PLUGINS)],
            "plugins": ["embedtest", "demo", "heartbeat"],
            "stop_timeout": 10.0,
        },
        "embedtest": {"dir": str(workdir)},
        # (the lamp does not follow the temperature: only the test writes it)
        "demo": {"interval": 0.05, "latency": 0.01, "follow": False},
        "heartbeat": {"interval": 0.1},
    }
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    return sections


def say(*parts: object) -> None:
    print(*parts, flush=True)


def legacy(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed
    from hadaemon.bus import ErrorEvent, Level

    handle = embed.start(config(workdir))
    reactor_thread = handle.call(threading.get_ident)
    assert reactor_thread != threading.get_ident()
    say("started")
    # plain, Deferred-returning and async functions
    assert handle.call(lambda a, b=0: a + b, 1, b=2) == 3
    from twisted.internet.task import deferLater

    assert handle.call(lambda: deferLater(handle.reactor, 0.01, lambda: "deferred")) == "deferred"

    async def mixed(x: int) -> int:
        await asyncio.sleep(0.01)
        y: int = await deferLater(handle.reactor, 0.01, lambda: 2)
        return x * y

    assert handle.call(mixed, 21) == 42
    assert handle.submit(mixed, 5).result(5) == 10
    say("calls ok")
    # the facade: bus endpoints, devices, system variables, events
    assert handle.send("service:echo_py/ping", {"n": 1}) == {"action": "ping",
                                                             "message": {"n": 1}}
    assert handle.send("node:n1/1", {"payload": 5}) == "input 1"
    handle.post("node:n1/0", {"payload": 6})
    try:
        handle.send("node:nobody/0", {})
    except Exception as exc:
        assert type(exc).__name__ == "UnknownDestination", exc
    devices = {d["name"]: d for d in handle.devices()}
    lamp = devices["Demo lamp"]["peer_id"]
    handle.set_value(lamp, 0, "brightness", 77, confirm=True, timeout=30)
    assert handle.get_value(lamp, 0, "brightness") == 77
    try:
        handle.set_value(devices["Demo thermometer"]["peer_id"], 0, "temperature", 3.0)
    except Exception as exc:
        assert type(exc).__name__ == "ReadOnly", exc
    handle.set_system_variable("mode", {"away": True})
    assert handle.get_system_variable("mode") == {"away": True}
    assert "mode" in handle.system_variables()
    handle.delete_system_variable("mode")
    say("facade ok")
    seen: list[tuple[int, str]] = []
    got_one = threading.Event()

    def on_change(event: Any) -> None:
        seen.append((threading.get_ident(), event.name))
        got_one.set()

    sub = handle.subscribe("variable/demo/#", on_change)
    assert got_one.wait(5)
    sub.cancel()
    assert all(tid not in (reactor_thread, threading.get_ident()) for tid, _ in seen)
    with handle.events("error/#", timeout=5) as errors:
        handle.publish(ErrorEvent("legacy", "hello from the legacy program", Level.WARNING))
        event = next(errors)
        assert event.message == "hello from the legacy program"
    say("events ok")
    handle.stop()
    handle.stop()  # idempotent
    try:
        handle.call(int)
    except embed.Stopped:
        say("stopped ok")


def services(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed
    from hadaemon.testing.waiting import poll_until

    cfg = config(workdir)
    cfg["daemon"]["plugins"] = ["embedtest", "services"]
    cfg["services"] = {"directories": [str(PLUGINS.parent / "services")],
                       "service": {"Greeter": {}}}
    handle = embed.start(cfg)
    # a legacy thread calls a service action and gets its answer
    assert handle.send("service:greeter_py/greet", "legacy") == "hello legacy"
    # the service's own SubmitAction reached the node endpoint of the test plugin
    plugin: Any = handle.call(lambda: handle.daemon.plugin("embedtest"))
    seen = poll_until(lambda: handle.call(lambda: list(plugin.seen)), 60, "the node message")
    assert seen == [("0", {"payload": "hello legacy"})], seen
    handle.stop()
    say("services ok")


def nodes(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed
    from hadaemon.testing.waiting import poll_until

    os.environ["EMBED_WORKDIR"] = str(workdir)  # the node inherits it
    cfg = config(workdir)
    cfg["daemon"]["plugins"] = ["embedtest", "nodes"]
    cfg["nodes"] = {"grace": 2.0, "node": [{
        "id": "doubler",
        "file": str(PLUGINS.parent / "nodes" / "doubler.py"),
        "wires": [["service:echo_py/doubled"]],
    }]}
    handle = embed.start(cfg)
    # from the legacy thread to a real node process, and its output back on the bus
    handle.send("node:doubler/0", {"payload": 21, "topic": "t"})
    plugin: Any = handle.call(lambda: handle.daemon.plugin("embedtest"))
    seen = poll_until(lambda: handle.call(lambda: list(plugin.seen)), 60, "the node's output")
    action, message = seen[0]
    assert action == "doubled" and message["payload"] == 42 and message["topic"] == "t", seen
    state = handle.call(lambda: handle.daemon.plugin("nodes").nodes())  # type: ignore[union-attr]
    (workdir / "node.pid").write_text(str(state["doubler"]["pid"]))
    say("nodes ok")
    # no stop(): the program ends; the node and its grandchild must go too


def wait_forever(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    embed.start(config(workdir, embedtest={"child": True}))
    say("ready")
    while True:
        time.sleep(0.1)


def hostile(workdir: pathlib.Path) -> None:
    """User code raising KeyboardInterrupt and sys.exit() everywhere the embedding reaches;
    the daemon goes on, and the program's own Ctrl+C still ends everything."""
    import hadaemon.embed as embed
    from hadaemon.bus import ErrorEvent, Level
    from hadaemon.testing.waiting import poll_until

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logging.getLogger("hadaemon").addHandler(Keep())
    cfg = config(workdir, embedtest={"child": True})
    cfg["daemon"]["plugins"] = ["embedtest", "services"]
    cfg["services"] = {"directories": [str(HOSTILE)], "service": {"Hostile": {}}}
    handle = embed.start(cfg)
    for action in ["interrupt", "exit"]:
        try:
            handle.send(f"service:hostile_py/{action}", None)
        except Exception as exc:
            say(f"{action}: {type(exc).__name__}: {exc}")
        assert handle.send("service:hostile_py/ping", None) == "pong"

    def interrupting() -> None:
        raise KeyboardInterrupt("from a handle.call")

    try:
        handle.call(interrupting)
    except Exception as exc:
        say(f"call: {type(exc).__name__}: {exc}")
    for action in ["own_task", "call_soon"]:
        handle.send(f"service:hostile_py/{action}", None)
    poll_until(lambda: any("from a task of its own" in r for r in records)
               and any("from a loop callback" in r for r in records), 60,
               f"both escapes logged (so far: {records})")
    assert handle.send("service:hostile_py/ping", None) == "pong"
    say("loop escapes reported")
    seen: list[str] = []

    def subscriber(event: Any) -> None:
        if event.message == "first":
            raise KeyboardInterrupt("from an embedding subscriber")
        seen.append(event.message)

    handle.subscribe("error/test/#", subscriber)
    handle.publish(ErrorEvent("test", "first", Level.INFO))
    handle.publish(ErrorEvent("test", "second", Level.INFO))
    poll_until(lambda: seen == ["second"], 60, "the second event only")
    assert any("from an embedding subscriber" in r for r in records), records
    say("subscriber goes on")
    say("ready")
    while True:
        time.sleep(0.1)


def fall_off(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    handle = embed.start(config(workdir, embedtest={"child": True}))
    handle.set_system_variable("kept", "yes")
    say("ready")
    # no stop(): the main thread just ends


def timeout(workdir: pathlib.Path) -> None:
    from twisted.internet.defer import CancelledError, Deferred

    import hadaemon.embed as embed

    handle = embed.start(config(workdir))
    cancelled = threading.Event()

    def never() -> Deferred[None]:
        return Deferred(lambda d: cancelled.set())

    started = time.monotonic()
    try:
        handle.call(never, timeout=0.3)
    except embed.CallTimeout as exc:
        say(f"timeout after {time.monotonic() - started:.2f}s: {exc}")
    assert cancelled.wait(60)
    say("work cancelled")

    async def forever() -> None:
        await asyncio.sleep(1000)

    future = handle.submit(forever)
    try:
        handle.call(forever, timeout=0.2)
    except embed.CallTimeout:
        say("async timeout")
    future.cancel_work()  # type: ignore[attr-defined]
    try:
        future.result(5)
    except (CancelledError, asyncio.CancelledError):
        say("async work cancelled")
    handle.stop()


def errors(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    handle = embed.start(config(workdir))

    class Custom(Exception):
        pass

    def boom() -> None:
        raise Custom("raised in the reactor thread")

    try:
        handle.call(boom)
    except Custom as exc:
        say(f"caught {type(exc).__name__}: {exc}")

    async def exits() -> None:
        sys.exit(3)

    try:
        handle.call(exits)
    except embed.EmbedError:
        raise
    except Exception as exc:
        say(f"exit became {type(exc).__name__}")
    assert handle.call(lambda: 7) == 7  # the reactor survived
    try:
        handle.call(lambda: handle.call(int))
    except embed.Deadlock as exc:
        say(f"deadlock refused: {exc}")
    fut = handle.submit(lambda: handle.call(int))
    try:
        fut.result(5)
    except embed.Deadlock:
        say("deadlock refused in submit")
    handle.stop()


def restart(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    handle = embed.start(config(workdir))
    handle.stop()
    try:
        embed.start(config(workdir))
    except embed.NotRestartable as exc:
        say(f"refused: {exc}")


def second_start(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    handle = embed.start(config(workdir))
    other = config(workdir / "other")
    for name, cfg in [("same", config(workdir)), ("other", other)]:
        try:
            embed.start(cfg)
        except embed.AlreadyRunning as exc:
            say(f"{name} refused: {exc}")
    try:
        handle.call(lambda: embed.start(other))  # from the reactor thread too
    except embed.AlreadyRunning:
        say("reactor thread refused")
    assert not (workdir / "other").exists()  # nothing of a second daemon was made
    assert handle.call(lambda: 7) == 7  # the first one is untouched
    handle.stop()
    say("first stopped")


def racing_starts(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    outcomes: list[str] = []
    handles: list[Any] = []
    gate = threading.Barrier(2)

    def starter(name: str) -> None:
        gate.wait()
        try:
            handles.append(embed.start(config(workdir / name)))
            outcomes.append("started")
        except embed.AlreadyRunning:
            outcomes.append("refused")
        except Exception as exc:  # shown by the test: anything but a clear refusal is wrong
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=starter, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say("race", sorted(outcomes))
    handles[0].stop()


def stop_on_reactor_thread(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    handle = embed.start(config(workdir))
    returned = handle.submit(handle.stop).result(10)  # starts the stop, returns at once
    say("reactor thread stop returned", returned)
    try:
        handle.call(int)
    except embed.Stopped:
        say("stopped at once for callers")
    handle.stop()  # from another thread: waits for the stop under way
    reactor_threads = [t for t in threading.enumerate() if t.name == "hadaemon-reactor"]
    say("after stop:", (workdir / "stopped").exists(), reactor_threads)


def own_loop(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    assert asyncio.run(asyncio.sleep(0, "before")) == "before"
    mine = asyncio.new_event_loop()
    asyncio.set_event_loop(mine)
    handle = embed.start(config(workdir))
    assert asyncio.get_event_loop() is mine  # the caller's loop is left alone
    assert mine.run_until_complete(asyncio.sleep(0, "mine")) == "mine"
    reactor_loop = handle.call(asyncio.get_running_loop)
    assert reactor_loop is not mine
    handle.stop()
    mine.close()
    asyncio.set_event_loop(None)
    assert asyncio.run(asyncio.sleep(0, "after")) == "after"
    say("loops ok")


def attach(workdir: pathlib.Path) -> None:
    from hadaemon.reactor import install_asyncio_reactor

    reactor = install_asyncio_reactor()
    import hadaemon.embed as embed

    results: list[Any] = []

    def worker(handle: embed.Handle) -> None:
        handle.wait_started(10)
        results.append(handle.call(lambda: "from a worker thread"))
        handle.stop()
        reactor.callFromThread(reactor.stop)

    def on_reactor() -> None:
        handle = embed.start(config(workdir))  # must not block on the reactor thread:
        # it returned before the daemon started (which needs this thread to run on)
        results.append(not handle.started.done())
        try:
            handle.call(int)
        except embed.Deadlock:
            results.append("deadlock guard")
        threading.Thread(target=worker, args=(handle,)).start()

    reactor.callWhenRunning(reactor.callLater, 0, on_reactor)
    reactor.run()
    say("attach", results)


def wrong_reactor(workdir: pathlib.Path) -> None:
    from twisted.internet import reactor  # the default (epoll) one

    import hadaemon.embed as embed

    try:
        embed.start(config(workdir))
    except embed.WrongReactor as exc:
        say(f"refused {type(reactor).__name__}: {exc}")


def fork(workdir: pathlib.Path) -> None:
    import hadaemon.embed as embed

    handle = embed.start(config(workdir))
    pid = os.fork()
    if pid == 0:
        started = time.monotonic()
        try:
            handle.call(int)
            os._exit(1)
        except embed.Forked as exc:
            print(f"child refused after {time.monotonic() - started:.3f}s: {exc}", flush=True)
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert handle.call(lambda: 5) == 5
    handle.stop()
    say("parent ok")


def stdlib_logging(workdir: pathlib.Path) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logging.getLogger().addHandler(Keep())
    logging.getLogger().setLevel(logging.INFO)
    stdout, stderr, showwarning = sys.stdout, sys.stderr, warnings.showwarning
    import hadaemon.embed as embed

    handle = embed.start(config(workdir))
    assert (sys.stdout, sys.stderr, warnings.showwarning) == (stdout, stderr, showwarning)
    handle.stop()
    names = {r.name for r in records if "hadaemon started" in r.getMessage()}
    say("logged by", sorted(names))
    warnings.warn("the host's own warning", stacklevel=1)


if __name__ == "__main__":
    import faulthandler
    import signal

    # The test asks for every thread's stack (SIGUSR2) before it kills a scenario that hangs.
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    scenario, workdir = sys.argv[1], pathlib.Path(sys.argv[2])
    globals()[scenario](workdir)
