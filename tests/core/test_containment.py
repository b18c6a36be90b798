"""User code cannot stop or hang the daemon: only a real signal does.

Through real daemon processes (``hadaemon run`` and twistd): a service's actions, a bare
bus handler, a subscriber, a plugin's start and stop and a service's own task and loop
callback raise ``KeyboardInterrupt`` (and ``sys.exit()``, a ``BaseException`` of the
user's own); each is reported with the user's file and line, the daemon goes on serving,
and a real SIGINT then stops it cleanly.
"""

from __future__ import annotations

import asyncio
import pathlib
import signal
import socket
import sys
import textwrap
import threading
import traceback
from typing import Any

import pytest
from twisted.internet.task import Clock

from hadaemon.bus import Bus, ErrorEvent, Level
from hadaemon.daemon import Daemon
from hadaemon.testing import Broker, capture_logs, poll_until, run_in_reactor, wait_until
from hadaemon.testing.daemon import DaemonProcess, write_config
from hadaemon.testing.processes import ChildProcesses
from hadaemon.testing.reactors import new_reactor
from hadaemon.usercode import UserCodeEscape, UserCodeExit, contain, failure_of, guard_reactor
from tests.core.helpers import result_of, sigint_handled
from tests.zigbee.util import zigbee_daemon

HOSTILE = pathlib.Path(__file__).resolve().parent / "hostile"
SERVICE = HOSTILE / "services" / "Hostile.py"
PLUGINS = HOSTILE / "plugins" / "hostile.py"
BIN = pathlib.Path(sys.executable).parent
# How long a wait for the daemon (start, an answer, a log line, the exit after SIGINT) may
# take: a guard against a hang only, far beyond its stop budget (10 s) and what a loaded
# 2-core CI needs; each wait is for its condition and returns as soon as it holds.
HANG_GUARD = 120.0


def line_of(path: pathlib.Path, text: str) -> int:
    """The line number of the first line of ``path`` containing ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def where(path: pathlib.Path, text: str, function: str) -> str:
    return f"{path}:{line_of(path, text)}, in {function}"


def make_config(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_config(tmp_path / "hadaemon.toml", {
        "daemon": {
            "state_dir": "var",
            "plugin_dirs": [str(HOSTILE / "plugins")],
            "plugins": ["interruptsstop", "services", "nodes", "trigger", "interruptsstart",
                        "interruptscreate"],
            "stop_timeout": 10.0,
        },
        "services": {"directories": [str(HOSTILE / "services")],
                     "service": {"Hostile": {}}},
        "nodes": {"grace": 2.0, "node": [{
            "id": "forward", "file": str(HOSTILE / "nodes" / "forward.py"),
            "wires": [["service:hostile_py/from_node"]],
        }]},
        "trigger": {"socket": str(tmp_path / "trigger.sock")},
        "interruptsstop": {"dir": str(tmp_path)},
    })


class Driver:
    """The test's end of the trigger plugin's line protocol."""

    def __init__(self, path: pathlib.Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(HANG_GUARD)
        self.sock.connect(str(path))
        self.lines = self.sock.makefile("rb")

    def send(self, address: str, message: str = "null") -> str:
        self.sock.sendall(f"{address} {message}\n".encode())
        line = self.lines.readline()
        assert line, "the daemon closed the connection"
        return line.decode().rstrip("\n")

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


def wait_for_text(path: pathlib.Path, text: str, timeout: float = HANG_GUARD) -> None:
    poll_until(lambda: text in (path.read_text(errors="replace") if path.exists() else ""),
               timeout, f"{text!r} in {path}")


def provoke_everything(tmp_path: pathlib.Path, log: pathlib.Path) -> str:
    """Every kind of hostile call, each followed by proof that the daemon still serves."""
    driver = Driver(tmp_path / "trigger.sock")
    answers: dict[str, str] = {}
    try:
        for action in ["interrupt", "interrupt_later", "exit", "unusual"]:
            answers[action] = driver.send(f"service:hostile_py/{action}")
            assert driver.send("service:hostile_py/ping") == "ok pong"
        answers["bare"] = driver.send("test:bare")
        assert driver.send("service:hostile_py/ping") == "ok pong"
        assert driver.send("test:publish", '"hello"') == "ok published"
        wait_for_text(log, "from a bus subscriber")
        assert driver.send("service:hostile_py/ping") == "ok pong"
        # a real node process's output, wired to an action that raises, twice: the wire
        # and the node go on
        for n in (1, 2):
            assert driver.send("node:forward/0", '{"payload": 1}') == "ok forwarded"
            wait_for_text(log, f"from a node's message {n}")
        for action, text in [("own_task", "from a task of its own"),
                             ("call_soon", "from a loop callback")]:
            assert driver.send(f"service:hostile_py/{action}") == "ok None"
            wait_for_text(log, text)  # escaped the loop: the guard reported it
            assert driver.send("service:hostile_py/ping") == "ok pong"
    finally:
        driver.close()
    user = str(SERVICE)
    assert answers["interrupt"] == (
        "failed user code raised KeyboardInterrupt(from a service action) at "
        + where(SERVICE, '"from a service action"', "interrupt")
    )
    assert answers["interrupt_later"].startswith(
        "failed user code raised KeyboardInterrupt(after an await) at " + user
    )
    assert answers["exit"] == (
        "failed user code called sys.exit(3) at " + where(SERVICE, "sys.exit(3)", "exit")
    )
    assert answers["unusual"] == (
        "failed user code raised Unusual(of its own) at "
        + where(SERVICE, 'raise Unusual("of its own")', "unusual")
    )
    assert answers["bare"] == (
        "failed user code raised KeyboardInterrupt(from a bare bus handler) at "
        + where(PLUGINS, '"from a bare bus handler"', "bare")
    )
    text = log.read_text()
    assert "user code raised KeyboardInterrupt(from a bus subscriber) at " + where(
        PLUGINS, '"from a bus subscriber"', "subscriber") in text
    assert "user code raised KeyboardInterrupt(from a task of its own) at " + where(
        SERVICE, '"from a task of its own"', "interrupting_task") in text
    assert "user code raised KeyboardInterrupt(from a loop callback) at " + where(
        SERVICE, '"from a loop callback"', "interrupt_later") in text
    # the plugins whose constructor or start raised failed alone; the daemon started
    assert "plugin interruptsstart failed to start: user code raised KeyboardInterrupt(" \
        "from a plugin's start) at " + where(PLUGINS, "\"from a plugin's start\"", "start") \
        in text
    assert "plugin interruptscreate failed to create: UserCodeEscape: user code raised " \
        "KeyboardInterrupt(from a plugin's constructor) at " + where(
            PLUGINS, "\"from a plugin's constructor\"", "__init__") in text
    assert "4 plugin(s) running (interruptsstop, services, nodes, trigger); failed: " \
        "interruptscreate, interruptsstart" in text
    return text


def test_hadaemon_run_survives_user_code_and_stops_on_sigint(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    daemon = DaemonProcess(make_config(tmp_path), processes=processes).start(
        timeout=HANG_GUARD)
    provoke_everything(tmp_path, daemon.log_path)
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert daemon.stop(signal.SIGINT, timeout=HANG_GUARD) == 0  # a real Ctrl+C stops it
    text = daemon.output()
    assert (tmp_path / "stop-called").exists()
    assert "KeyboardInterrupt(from a plugin's stop) at " + where(
        PLUGINS, "\"from a plugin's stop\"", "stop") in text
    assert "hadaemon stopped" in text


def test_twistd_survives_user_code_and_stops_on_sigint(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    config = make_config(tmp_path)
    daemon = DaemonProcess(
        config, processes=processes,
        command=[str(BIN / "twistd"), "-n", "--pidfile=", "--logfile=-", "hadaemon",
                 "--config", str(config)],
    ).start(timeout=HANG_GUARD)
    provoke_everything(tmp_path, daemon.log_path)
    assert daemon.proc is not None and daemon.proc.poll() is None
    status = daemon.stop(signal.SIGINT, timeout=HANG_GUARD)
    # twistd's convention: it re-raises the signal on itself once stopped (-2 for Popen)
    assert status == -signal.SIGINT, daemon.output()[-3000:]
    assert "hadaemon stopped" in daemon.output()




# -- in process: the one helper, the bus, the guarded loop, automations ---------------------


def interrupting(text: str = "from user code") -> None:
    raise KeyboardInterrupt(text)


def exiting() -> None:
    sys.exit(4)


class Own(BaseException):
    """A BaseException of the user's own."""


def raising_own() -> None:
    raise Own()


def caught(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError(f"{fn} did not raise")


HERE = pathlib.Path(__file__)


def test_contain_turns_what_user_code_raises_into_an_error_naming_its_line() -> None:
    with sigint_handled():
        escape = contain(caught(interrupting))
        leaving = contain(caught(exiting))
        own = contain(caught(raising_own))
        failure = failure_of(caught(interrupting))
    assert type(escape) is UserCodeEscape and isinstance(escape.original, KeyboardInterrupt)
    assert str(escape) == "user code raised KeyboardInterrupt(from user code) at " + where(
        HERE, "raise KeyboardInterrupt(text)", "interrupting")
    # the traceback is the user's, down to the line that raised
    assert "raise KeyboardInterrupt(text)" in "".join(traceback.format_tb(escape.__traceback__))
    assert isinstance(leaving, UserCodeExit) and leaving.code == 4
    assert str(leaving) == "user code called sys.exit(4) at " + where(
        HERE, "sys.exit(4)", "exiting")
    assert str(own) == "user code raised Own at " + where(HERE, "raise Own()", "raising_own")
    assert failure.check(UserCodeEscape) and "raise KeyboardInterrupt(text)" in (
        failure.getTraceback())
    # ordinary errors and cancellations stay what they are
    for passing in [ValueError("x"), asyncio.CancelledError()]:
        assert contain(passing) is passing


def test_a_keyboard_interrupt_that_may_be_a_real_ctrl_c_goes_on_up() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Python's own handler on the main thread: it may be a real Ctrl+C
        with pytest.raises(KeyboardInterrupt):
            contain(caught(interrupting))
        assert isinstance(contain(caught(exiting)), UserCodeExit)  # no signal does that
        # another thread never gets a signal: there it is user code's
        box: list[BaseException] = []
        worker = threading.Thread(target=lambda: box.append(contain(caught(interrupting))))
        worker.start()
        worker.join()
        assert type(box[0]) is UserCodeEscape
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_guarded_loop_goes_on_through_what_escapes_it() -> None:
    reactor = new_reactor()
    guard_reactor(reactor)
    guard_reactor(reactor)  # idempotent

    async def leaves() -> None:
        sys.exit(7)

    async def scenario(r: Any) -> str:
        loop = asyncio.get_running_loop()
        loop.call_soon(interrupting, "from a loop callback")
        task = loop.create_task(leaves())  # a bare task: no hadaemon wrapper around it
        await wait_until(r, lambda: "sys.exit(7)" in logs.text()
                         and "from a loop callback" in logs.text())
        assert task.done()
        return "survived"

    with sigint_handled(), capture_logs() as logs:
        try:
            assert run_in_reactor(scenario, reactor=reactor, timeout=10) == "survived"
        except (KeyboardInterrupt, SystemExit) as exc:
            pytest.fail(f"escaped the loop: {exc!r}")
    text = logs.text()
    assert "user code outside any handler raised KeyboardInterrupt" in text
    assert "at " + where(HERE, "raise KeyboardInterrupt(text)", "interrupting") in text
    assert "user code called sys.exit(7) at " + where(HERE, "sys.exit(7)", "leaves") in text


def test_bus_handlers_and_subscribers_raising_keyboard_interrupt() -> None:
    clock = Clock()
    bus = Bus(clock)

    def handler(address: Any, message: Any) -> None:
        raise KeyboardInterrupt("in a handler")

    async def async_handler(address: Any, message: Any) -> None:
        raise KeyboardInterrupt("in an async handler")

    def subscriber(event: Any) -> None:
        raise KeyboardInterrupt("in a subscriber")

    got: list[str] = []
    bus.register("node:sync", handler)
    bus.register("node:async", async_handler)
    bus.register("node:fine", lambda a, m: "alive")
    bus.subscribe("#", subscriber, name="the interrupting one")
    bus.subscribe("#", lambda e: got.append("after"))
    with sigint_handled(), capture_logs() as logs:
        outcomes = [bus.send(f"node:{name}/0", None) for name in ["sync", "async", "fine"]]
        clock.advance(0)
        bus.publish(ErrorEvent("test", "hello", Level.INFO))
    sync, async_, fine = (result_of(d) for d in outcomes)
    assert sync.check(UserCodeEscape) and async_.check(UserCodeEscape)
    assert str(sync.value) == "user code raised KeyboardInterrupt(in a handler) at " + where(
        HERE, '"in a handler"', "handler")
    assert str(async_.value).endswith(where(HERE, '"in an async handler"', "async_handler"))
    assert fine == "alive" and got == ["after"]
    text = logs.text()
    assert "handler node:sync failed" in text and "the interrupting one" in text
    assert where(HERE, '"in a subscriber"', "subscriber") in text


def test_automations_raising_keyboard_interrupt_stay_inside(
    tmp_path: pathlib.Path, broker: Broker
) -> None:
    rude = tmp_path / "rude" / "rude.py"
    rude.parent.mkdir()
    rude.write_text(textwrap.dedent('''
        from pyziggy.message_loop import MessageLoopTimer
        from pyziggy_autogenerate.available_devices import AvailableDevices

        devices = AvailableDevices()

        def on_timer(timer):
            raise KeyboardInterrupt("from a timer")

        timer = MessageLoopTimer(on_timer)

        def on_connect():
            timer.start(0.01)
            raise KeyboardInterrupt("from on_connect")

        devices.on_connect.add_listener(on_connect)
    '''))
    unloadable = tmp_path / "unloadable" / "unloadable.py"
    unloadable.parent.mkdir()
    unloadable.write_text("raise KeyboardInterrupt('at import')\n")
    good = tmp_path / "good" / "good.py"
    good.parent.mkdir()
    good.write_text(textwrap.dedent('''
        from pyziggy.message_loop import MessageLoopTimer
        from pyziggy_autogenerate.available_devices import AvailableDevices

        devices = AvailableDevices()
        ticks = []
        timer = MessageLoopTimer(lambda t: ticks.append(1))
        devices.on_connect.add_listener(lambda: timer.start(0.02))
    '''))
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={
        "automations": [str(rude), str(unloadable), str(good)], "initial_query": False})

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        daemon.startService()
        await daemon.started
        zigbee: Any = daemon.plugin("zigbee2mqtt")
        runtimes = {r.name: r for r in zigbee.automations}
        await wait_until(reactor, lambda: "from a timer" in logs.text(), what="the timer")
        ticks = len(runtimes["good"].module.ticks)
        await wait_until(reactor, lambda: len(runtimes["good"].module.ticks) > ticks + 2,
                         what="the good automation going on")
        assert [r.loaded for r in zigbee.automations] == [True, False, True]
        assert reactor.running and not daemon.failed
        await daemon.stopService()

    with sigint_handled(), capture_logs() as logs:
        run_in_reactor(scenario, timeout=20)
    text = logs.text()
    assert "user code raised KeyboardInterrupt(from on_connect) at " + where(
        rude, '"from on_connect"', "on_connect") in text
    assert "user code raised KeyboardInterrupt(from a timer) at " + where(
        rude, '"from a timer"', "on_timer") in text
    assert f"{unloadable} failed to load" in text
    assert "user code raised KeyboardInterrupt(at import) at " + where(
        unloadable, "at import", "<module>") in text
