"""Supervision: failing handlers and Starts, restarts with backoff, blocking code, full
mailboxes, stopping and starting services on request, StateUpdate."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from hadaemon.bus import ErrorEvent, Level, Lifecycle
from hadaemon.testing import capture_logs, run_in_reactor, wait_until

from .helpers import make_config, running

FAILING = '''
import sys
from base_service import CustomService

class Failing(CustomService):
    async def explode(self, msg):
        raise ValueError(f"cannot handle {msg.message[0]!r}")

    async def leave(self, msg):
        sys.exit(msg.message[0])

    async def later(self, msg):
        import asyncio
        await asyncio.sleep(0.01)
        raise KeyError("after an await")

    async def no_argument(self):
        pass

    async def ok(self, msg):
        await self.SubmitAction("node:probe", "ok", msg.message[0])
'''

SENDER = '''
from base_service import CustomService

class Sender(CustomService):
    async def go(self, msg):
        for action, value in msg.message[0]:
            await self.SubmitAction("failing_py", action, value)
'''


def test_raising_handlers_and_sys_exit_are_reported_and_the_service_goes_on(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, {"Failing": FAILING, "Sender": SENDER})

    async def scenario(reactor: Any) -> list[ErrorEvent]:
        async with running(config, reactor) as run:
            await run.bus.send("service:sender_py/go", [
                ["explode", 42], ["leave", 3], ["later", None], ["no_argument", None],
                ["ok", "alive"],
            ])
            assert await run.probe.wait(reactor, "ok") == ["alive"]
            await wait_until(reactor, lambda: len(run.events.errors("service:failing_py")) >= 4
                             and run.idle(), what="four errors and every call ended")
            assert run.daemon.running and reactor.running  # sys.exit stopped nothing
            assert not run.events.errors("service:sender_py")  # not the sender's problem
            return run.events.errors("service:failing_py")

    with capture_logs() as logs:
        errors = run_in_reactor(scenario, timeout=10)
    by_action = {e.details["action"]: e for e in errors}
    assert set(by_action) == {"explode", "leave", "later", "no_argument"}
    assert all(e.level is Level.ERROR and e.details["sender"] == "sender_py" for e in errors)
    assert by_action["explode"].message == "explode failed: ValueError: cannot handle 42"
    # named with the user's own file and line, and the traceback reaches into it
    assert by_action["leave"].message == (
        "leave failed: UserCodeExit: user code called sys.exit(3) at "
        f"{tmp_path / 'services' / 'Failing.py'}:10, in leave"
    )
    assert "sys.exit(msg.message[0])" in by_action["leave"].details["traceback"]
    assert by_action["later"].message == "later failed: KeyError: 'after an await'"
    assert "no_argument failed: TypeError" in by_action["no_argument"].message
    assert 'raise ValueError(f"cannot handle' in by_action["explode"].details["traceback"]
    text = logs.text()
    # logged with the traceback, naming the service and the action
    assert "service failing_py failed on a message to service:failing_py/explode" in text
    assert "Traceback" in text and "cannot handle 42" in text
    assert "Task exception was never retrieved" not in text


FLAKY = '''
from base_service import CustomService

class Flaky(CustomService):
    def __init__(self, id, queue, config):
        super().__init__(id, queue, config)
        self.attempts = 0

    async def Start(self):
        self.attempts += 1
        await self.SubmitAction("node:probe", "attempt", self.attempts)
        if self.attempts < 4:
            raise RuntimeError(f"attempt {self.attempts} failed")

    async def work(self, msg):
        await self.SubmitAction("node:probe", "work", [msg.message[0], self.attempts])
'''


def test_raising_start_is_restarted_with_backoff_and_messages_wait(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, {"Flaky": FLAKY}, restart_delay=0.2, restart_factor=1.5,
                         restart_delay_max=10.0)

    async def scenario(reactor: Any) -> tuple[list[Any], list[Any], list[Any], list[str]]:
        async with running(config, reactor) as run:
            await run.probe.wait(reactor, "attempt", 1)
            # the service is waiting to be restarted: a message waits in its mailbox
            assert run.runtime("flaky_py").state == "starting"
            run.bus.post("service:flaky_py/work", "queued")
            await run.probe.wait(reactor, "attempt", 4, timeout=5)
            work = await run.probe.wait(reactor, "work")
            lifecycle = [e for e in run.events.events if isinstance(e, Lifecycle)
                         and e.component == "service:flaky_py"]
            return (run.probe.values("attempt"), work,
                    [(e.state, e.details.get("restart_in")) for e in lifecycle],
                    run.events.texts("service:flaky_py"))

    attempts, work, lifecycle, errors = run_in_reactor(scenario, timeout=10)
    assert attempts == [1, 2, 3, 4]
    assert work == [["queued", 2]]  # delivered once Start was called again, after it
    failed = [delay for state, delay in lifecycle if state == "failed"]
    assert failed == pytest.approx([0.2, 0.3, 0.45])  # exponential backoff
    assert lifecycle[-1] == ("started", None)
    assert "Start failed: RuntimeError: attempt 1 failed" in errors
    assert "Start failed (3 in a row); restarting in 0.45s" in errors


def test_never_restart_leaves_the_service_failed(tmp_path: pathlib.Path) -> None:
    asker = '''
    from base_service import CustomService
    class Asker(CustomService):
        async def go(self, msg):
            await self.SubmitAction("flaky_py", "work", 1)
    '''
    config = make_config(tmp_path, {"Flaky": FLAKY, "Asker": asker}, restart="never")

    async def scenario(reactor: Any) -> tuple[str, list[str], list[Any]]:
        async with running(config, reactor) as run:
            await run.probe.wait(reactor, "attempt")
            await wait_until(reactor, lambda: run.runtime("flaky_py").state == "failed")
            await run.bus.send("service:asker_py/go", None)
            await wait_until(reactor, lambda: run.events.errors("service:asker_py"))
            # failed for good: no restart is scheduled, so none can come
            assert run.orchestrator.supervisors["flaky_py"]._restart_timer is None
            return (str(run.runtime("flaky_py").state), run.events.texts("service:asker_py"),
                    run.probe.values("attempt"))

    state, warnings, attempts = run_in_reactor(scenario, timeout=10)
    assert state == "failed" and attempts == [1]
    assert warnings == ["service flaky_py is failed; 'work' not delivered"]


FOREVER = '''
import asyncio
from base_service import CustomService

class Forever(CustomService):
    async def Start(self):
        await self.SubmitAction("node:probe", "forever", "started")
        while True:                       # a GPIO loop, say: Start never returns
            await asyncio.sleep(0.01)

    async def Stop(self):
        await self.SubmitAction("node:probe", "forever", "stopped")

    async def ping(self, msg):
        await self.SubmitAction("node:probe", "forever", "pinged")
'''

LATER = '''
from base_service import CustomService

class Later(CustomService):
    async def Start(self):
        await self.SubmitAction("node:probe", "later", "started")
'''


def test_start_that_never_returns_is_reported_and_others_are_unaffected(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, {"Forever": FOREVER, "Later": LATER},
                         start_report_timeout=0.2)

    async def scenario(reactor: Any) -> tuple[list[Any], list[ErrorEvent]]:
        async with running(config, reactor) as run:
            assert await run.probe.wait(reactor, "later") == ["started"]  # not blocked
            await run.bus.send("service:forever_py/ping", None)  # messages still arrive
            await wait_until(reactor, lambda: run.events.errors("service:forever_py"))
            events = run.events.errors("service:forever_py")
            assert run.runtime("forever_py").instance.task is not None
            assert not run.runtime("forever_py").instance.task.done()
        return run.probe.values("forever"), events

    forever, events = run_in_reactor(scenario, timeout=10)
    assert forever == ["started", "pinged", "stopped"]
    assert [(e.level, e.message) for e in events] == [
        (Level.INFO, "Start has not returned after 0.2s (fine if it is meant to run for as "
                     "long as the service does)")
    ]


BLOCKER = '''
import time
from base_service import CustomService

class Blocker(CustomService):
    async def crunch(self, msg):
        time.sleep(0.25)          # blocks the loop: every other service waits

    async def quick(self, msg):
        pass
'''


def test_blocking_handler_is_named_by_the_watchdog(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"Blocker": BLOCKER}, watchdog_threshold=0.1,
                         extra_sections={"watchdog": {"threshold": 0.1}})

    async def scenario(reactor: Any) -> list[ErrorEvent]:
        async with running(config, reactor) as run:
            await run.bus.send("service:blocker_py/quick", None)
            await run.bus.send("service:blocker_py/crunch", None)
            return run.events.errors("service:blocker_py")

    with capture_logs() as logs:
        errors = run_in_reactor(scenario, timeout=10)
    assert len(errors) == 1 and errors[0].level is Level.WARNING
    assert errors[0].details["action"] == "crunch" and errors[0].details["seconds"] >= 0.25
    assert errors[0].message.startswith("crunch blocked the loop for 0.2")
    text = logs.text()
    assert "service blocker_py: crunch blocked the loop" in text
    # the daemon's own watchdog names it while it blocks: the task is named after it
    assert "so far by asyncio task service:blocker_py/crunch" in text


SLOW = '''
import asyncio
from base_service import CustomService

class Slow(CustomService):
    async def Start(self):
        self.gate = asyncio.Event()
        self.got = []

    async def take(self, msg):
        await self.gate.wait()
        self.got.append(msg.message[0])

    async def open(self, msg):
        self.gate.set()
'''

FLOODER = '''
from base_service import CustomService

class Flooder(CustomService):
    async def flood(self, msg):
        for i in range(msg.message[0]):
            await self.SubmitAction("slow_py", "take", i)
        await self.SubmitAction("node:probe", "flooded", msg.message[0])
'''


def _flood(
    tmp_path: pathlib.Path, open_when: str, **options: Any
) -> tuple[list[Any], list[str], bool]:
    """Flood a stuck receiver (5 in its mailbox, 2 running) with 20 messages; let it
    catch up once the sender is ``"done"`` or ``"waiting"`` for room. Returns what it
    got, the sender's warnings, and whether the sender was still busy by then."""
    config = make_config(
        tmp_path, {"Slow": SLOW, "Flooder": FLOODER},
        {"Slow": {"mailbox_size": 5, "concurrency": 2}, "Flooder": {}}, **options,
    )

    async def scenario(reactor: Any) -> tuple[list[Any], list[str], bool]:
        async with running(config, reactor) as run:
            receiver = run.runtime("slow_py")
            slow = receiver.instance
            run.bus.post("service:flooder_py/flood", 20)
            if open_when == "waiting":
                await wait_until(reactor, lambda: receiver._room_waiters,
                                 what="the sender waiting for room")
            else:
                await run.probe.wait(reactor, "flooded")
            blocked = not run.probe.values("flooded")
            await run.bus.send("service:orchestrator/_start_service", "x")  # unrelated traffic
            slow.gate.set()  # the receiver catches up
            await run.probe.wait(reactor, "flooded")
            await wait_until(reactor, run.idle, what="every call ended")
            return sorted(slow.got), run.events.texts("service:flooder_py"), blocked

    return run_in_reactor(scenario, timeout=10)  # type: ignore[no-any-return]


def test_full_mailbox_drop_policy_warns_the_sender(tmp_path: pathlib.Path) -> None:
    got, warnings, blocked = _flood(tmp_path, "done", overflow="drop")
    # the sender submitted all 20 before the receiver ran: 5 fit in the mailbox
    assert got == list(range(5))
    assert not blocked
    assert warnings[0] == "mailbox of service:slow_py is full; message 'take' dropped"
    assert "more like it in the last second" in warnings[-1] or len(warnings) == 1


def test_full_mailbox_wait_policy_delivers_everything(tmp_path: pathlib.Path) -> None:
    got, warnings, blocked = _flood(tmp_path, "waiting", overflow="wait", overflow_timeout=30.0)
    assert got == list(range(20))
    assert warnings == []
    assert blocked  # the sender waited for room instead of dropping


def test_full_mailbox_wait_gives_up_after_the_timeout(tmp_path: pathlib.Path) -> None:
    got, warnings, _ = _flood(tmp_path, "done", overflow="wait", overflow_timeout=0.05)
    # 5 in the mailbox, then room for 2 as the first two started (and got stuck); each
    # of the other 13 found no room within 0.05 s and was dropped: the receiver caught
    # up only once the sender was done
    assert got == list(range(7))
    assert warnings[0] == ("mailbox of service:slow_py stayed full for 0.05s; message 'take' "
                           "dropped")


CONTROLLER = '''
from base_service import CustomService

class Controller(CustomService):
    async def stop_all(self, msg):
        await self.StopCustomServices()

    async def stop_one(self, msg):
        await self.SubmitAction("orchestrator", "_stop_service", msg.message[0])

    async def start_one(self, msg):
        await self.StartService(msg.message[0])

    async def spawn(self, msg):
        from Counter import Counter          # a sibling module: the same class
        await self.StartService(Counter("extra_py", self.queue, {}))

    async def send(self, msg):
        await self.SubmitAction(*msg.message[0])
'''

COUNTER = '''
from base_service import CustomService

class Counter(CustomService):
    def __init__(self, id, queue, config):
        super().__init__(id, queue, config)
        self.starts = self.stops = 0

    async def Start(self):
        self.starts += 1
        await self.SubmitAction("node:probe", "counter", [self.id, "start", self.starts])

    async def Stop(self):
        self.stops += 1
        await self.SubmitAction("node:probe", "counter", [self.id, "stop", self.stops])

    async def hello(self, msg):
        await self.SubmitAction("node:probe", "counter", [self.id, "hello", msg.message[0]])
'''


def test_stop_and_start_services_on_request(tmp_path: pathlib.Path) -> None:
    config = make_config(
        tmp_path, {"Controller": CONTROLLER, "Counter": COUNTER,
                   "Disabled": COUNTER.replace("Counter", "Disabled")},
        {"Controller": {}, "Counter": {}, "Disabled": {"enabled": False}},
    )

    async def scenario(reactor: Any) -> tuple[list[Any], list[str]]:
        async with running(config, reactor) as run:
            def state(service_id: str) -> str:
                return str(run.runtime(service_id).state)

            async def control(action: str, arg: Any = None) -> None:
                await run.bus.send(f"service:controller_py/{action}", arg)

            await run.probe.wait(reactor, "counter", 1)
            await control("stop_one", "Counter")                 # by name, any case
            await wait_until(reactor, lambda: state("counter_py") == "stopped")
            await control("send", ["counter_py", "hello", 1])    # refused: stopped
            await wait_until(reactor, lambda: run.events.errors("service:controller_py"))
            await control("start_one", "counter_py")              # the same instance again
            await wait_until(reactor, lambda: state("counter_py") == "running")
            await control("send", ["counter_py", "hello", 2])
            await control("start_one", "Disabled")
            await control("spawn")                                 # a new instance
            await run.probe.wait(reactor, "counter", 5)
            assert state("extra_py") == "running"
            await control("stop_all")                              # the controller too
            await wait_until(reactor, lambda: state("controller_py") == "stopped")
            assert {state("counter_py"), state("extra_py")} == {"stopped"}
            # a node or plugin can reach the orchestrator too: start them all again
            await run.bus.send("service:orchestrator/_start_custom_services", None)
            assert state("controller_py") == state("counter_py") == "running"
            assert state("disabled_py") == "disabled"
            await run.probe.wait(reactor, "counter", 9)
        # the daemon's stop stopped them once more; the disabled one never ran
        return run.probe.values("counter"), run.events.texts("service:controller_py")

    counter, warnings = run_in_reactor(scenario, timeout=10)
    mine = [c[1:] for c in counter if c[0] == "counter_py"]
    assert mine == [["start", 1], ["stop", 1], ["start", 2], ["hello", 2], ["stop", 2],
                    ["start", 3], ["stop", 3]]
    extra = [c[1:] for c in counter if c[0] == "extra_py"]
    assert extra == [["start", 1], ["stop", 1], ["start", 2], ["stop", 2]]
    assert not [c for c in counter if c[0] == "disabled_py"]
    assert warnings == [
        "service counter_py is stopped; 'hello' not delivered",
        "StartService: service disabled_py is disabled in the config",
    ]


STATEFUL = '''
from base_service import CustomService

class Stateful(CustomService):
    async def StateUpdate(self, msg):
        await self.SubmitAction("node:probe", "state", [msg.source, msg.message[0]])

    async def msb_signed_in(self, msg):
        await self.SubmitAction("node:probe", "signed_in", msg.message[0])

    async def Stop(self):
        await self.SubmitAction("node:probe", "state", ["stop", None])
'''


def test_state_updates_follow_the_daemon_and_the_broker(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"Stateful": STATEFUL}, node_name="node-1")

    async def scenario(reactor: Any) -> list[Any]:
        async with running(config, reactor) as run:
            await run.probe.wait(reactor, "signed_in")
            # what the mqtt plugin publishes (hadaemon/mqtt: Lifecycle("mqtt", ...))
            run.bus.publish(Lifecycle("mqtt", "connected"))
            run.bus.publish(Lifecycle("mqtt", "disconnected"))
            await run.probe.wait(reactor, "state", 3)
        return [*run.probe.values("signed_in"), *run.probe.values("state")]

    signed_in, *states = run_in_reactor(scenario, timeout=10)
    assert signed_in == {"nodeName": "node-1"}
    assert [s[0] for s in states] == ["orchestrator"] * 4 + ["stop"]
    assert [s[1] for s in states[:4]] == [
        {"state": "started", "desired": {"state": "started"},
         "reported": {"daemon": "started", "upstream": "none", "nodeName": "node-1"}},
        {"state": "connected", "desired": {"state": "started"},
         "reported": {"daemon": "started", "upstream": "connected", "nodeName": "node-1"}},
        {"state": "disconnected", "desired": {"state": "started"},
         "reported": {"daemon": "started", "upstream": "disconnected", "nodeName": "node-1"}},
        {"state": "stopping", "desired": {"state": "stopped"},
         "reported": {"daemon": "stopping", "upstream": "disconnected", "nodeName": "node-1"}},
    ]


WAITER = '''
import asyncio
from base_service import CustomService

class Waiter(CustomService):
    async def forever(self, msg):
        await self.SubmitAction("node:probe", "waiting", msg.message[0])
        await asyncio.Event().wait()

    async def leave(self, msg):
        raise SystemExit(msg.message[0])
'''


def test_bus_senders_see_a_cancelled_action_as_none_and_sys_exit_as_a_failure(
    tmp_path: pathlib.Path,
) -> None:
    # A delivery's outcome is its task's: the handler's exception, or None once cancelled.
    from hadaemon.aio import UserCodeExit

    config = make_config(tmp_path, {"Waiter": WAITER})

    async def scenario(reactor: Any) -> Any:
        async with running(config, reactor) as run:
            with pytest.raises(UserCodeExit, match=r"sys.exit\(4\)"):
                await run.bus.send("service:waiter_py/leave", 4)
            pending = run.bus.send("service:waiter_py/forever", 1)
            await run.probe.wait(reactor, "waiting")
            assert run.runtime("waiter_py").running_calls == 1
            await run.orchestrator.stop_service("waiter_py", requested_by="test")
            outcome = await pending
            assert run.runtime("waiter_py").running_calls == 0
            return outcome

    with capture_logs() as logs:
        assert run_in_reactor(scenario, timeout=10) is None
    text = logs.text()
    assert "failed on a message to service:waiter_py/leave" in text
    assert "service:waiter_py/forever" not in text  # a cancelled action is no failure
    assert "Task exception was never retrieved" not in text
