"""SubmitAction between services: both ways, broadcast, refusals reported to the sender."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from hadaemon.bus import ErrorEvent, Level
from hadaemon.services import ActionRefused, QueueMessage, ServiceNotRunning
from hadaemon.testing import capture_logs, run_in_reactor, wait_until

from .helpers import make_config, running

PING = '''
from base_service import CustomService

class Ping(CustomService):
    async def Start(self):
        await self.SubmitAction("Pong_PY", "ping", {"n": 1})   # ids ignore case

    async def pong(self, msg):
        await self.SubmitAction("node:probe", "pong", [msg.source, msg.destination,
                                msg.action, list(msg.message)])
        if msg.message[0]["n"] < 5:
            await self.SubmitAction(msg.source, "ping", {"n": msg.message[0]["n"] + 1})

    async def hello(self, msg):
        await self.SubmitAction("node:probe", "hello", [self.id, msg.source])
'''

PONG = '''
from base_service import CustomService

class Pong(CustomService):
    async def ping(self, msg):
        await self.SubmitAction(msg.source, "pong", {"n": msg.message[0]["n"] + 1})

    async def hello(self, msg):
        await self.SubmitAction("node:probe", "hello", [self.id, msg.source])

    async def add(self, msg):
        return msg.message[0]["a"] + msg.message[0]["b"]
'''

QUIET = '''
from base_service import CustomService

class Quiet(CustomService):
    async def other(self, msg):
        pass
'''


def test_two_services_exchange_messages_both_ways(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"Ping": PING, "Pong": PONG})

    async def scenario(reactor: Any) -> list[Any]:
        async with running(config, reactor) as run:
            return await run.probe.wait(reactor, "pong", 3)

    pongs = run_in_reactor(scenario, timeout=10)
    assert pongs == [
        ["pong_py", "ping_py", "pong", [{"n": 2}]],
        ["pong_py", "ping_py", "pong", [{"n": 4}]],
        ["pong_py", "ping_py", "pong", [{"n": 6}]],
    ]


def test_broadcast_reaches_every_service_with_the_action(tmp_path: pathlib.Path) -> None:
    sender = '''
    from base_service import CustomService

    class Sender(CustomService):
        async def go(self, msg):
            await self.SubmitAction("*", "hello", None)
            await self.SubmitAction("*", "nobody_has_this", None)

        async def hello(self, msg):
            await self.SubmitAction("node:probe", "hello", [self.id, msg.source])
    '''
    config = make_config(tmp_path, {"Ping": PING, "Pong": PONG, "Quiet": QUIET,
                                    "Sender": sender})

    async def scenario(reactor: Any) -> tuple[list[Any], list[str]]:
        async with running(config, reactor) as run:
            await run.bus.send("service:sender_py/go", None)
            # until every call the broadcast caused has ended: a second delivery to
            # anyone would have shown by then
            await wait_until(reactor, lambda: len(run.probe.values("hello")) >= 3
                             and run.events.texts("service:sender_py")
                             and run.idle(),
                             what="three hellos, a warning and every service idle")
            return run.probe.values("hello"), run.events.texts("service:sender_py")

    hellos, warnings = run_in_reactor(scenario, timeout=10)
    assert sorted(tuple(h) for h in hellos) == [
        ("ping_py", "sender_py"), ("pong_py", "sender_py"), ("sender_py", "sender_py")
    ]
    assert warnings == ["no running service has an action 'nobody_has_this' (broadcast \"*\")"]


ASKER = '''
from base_service import CustomService

class Asker(CustomService):
    async def go(self, msg):
        target, action = msg.message[0]
        await self.SubmitAction(target, action, "payload")
'''


@pytest.mark.parametrize(
    ("target", "action", "expected"),
    [
        ("nosuch_py", "hello", "no service 'nosuch_py' to send 'hello' to (services: asker_py, "
         "com, logger, orchestrator, pong_py)"),
        ("pong_py", "nosuch", "service pong_py has no method 'nosuch'"),
        ("logger", "nosuch", "the built-in service logger has no action 'nosuch' (it accepts "
         "_debug, _error, _track, _warning)"),
        ("node:nobody", "0", "node:nobody/0 not delivered: no destination registered for "
         "node:nobody/0"),
        ("bad address:", "", "invalid destination 'bad address:': invalid address kind"),
    ],
)
def test_unknown_destination_and_missing_method_are_reported_to_the_sender(
    tmp_path: pathlib.Path, target: str, action: str, expected: str
) -> None:
    config = make_config(tmp_path, {"Asker": ASKER, "Pong": PONG})

    async def scenario(reactor: Any) -> list[ErrorEvent]:
        async with running(config, reactor) as run:
            await run.bus.send("service:asker_py/go", [target, action])
            await wait_until(reactor, lambda: run.events.errors("service:asker_py"))
            return run.events.errors()

    with capture_logs() as logs:
        errors = run_in_reactor(scenario, timeout=10)
    assert [e.source for e in errors] == ["service:asker_py"]
    assert errors[0].level is Level.WARNING
    assert errors[0].message.startswith(expected), errors[0].message
    # the warning is logged too, as the sender's own line
    assert any(e.get("log_namespace") == "hadaemon.services.asker_py"
               and expected[:30] in str(e.get("text")) for e in logs)


ATTACKER = '''
from base_service import CustomService

class Attacker(CustomService):
    async def go(self, msg):
        for action in ["Stop", "StopCustomServices", "ThrowError", "Start", "SubmitAction",
                       "_secret", "plain", "StateUpdate"]:
            await self.SubmitAction("victim_py", action, "boom")
        await self.SubmitAction("victim_py", "ping", "still there?")
'''

VICTIM = '''
from base_service import CustomService

class Victim(CustomService):
    async def Start(self):
        self.log = []

    async def Stop(self):
        await self.SubmitAction("node:probe", "stopped", self.log)

    async def _secret(self, msg):
        self.log.append("secret called")

    def plain(self, msg):
        self.log.append("plain called")

    async def ping(self, msg):
        await self.SubmitAction("node:probe", "pong", [msg.message[0], self.log])
'''


def test_api_methods_of_a_running_service_are_refused(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"Attacker": ATTACKER, "Victim": VICTIM})

    async def scenario(reactor: Any) -> tuple[Any, list[str], str]:
        async with running(config, reactor) as run:
            await run.bus.send("service:attacker_py/go", None)
            pong = (await run.probe.wait(reactor, "pong"))[0]
            warnings = run.events.texts("service:attacker_py")
            state = str(run.runtime("victim_py").state)
            assert not run.probe.values("stopped")  # Stop was never called by the attacker
            # the same refusals for senders that are not services (a node, a plugin)
            for action in ("Stop", "_secret", "plain"):
                with pytest.raises(ActionRefused):
                    await run.bus.send(f"service:victim_py/{action}", {"payload": 1})
        return pong, warnings, state

    pong, warnings, state = run_in_reactor(scenario, timeout=10)
    assert pong == ["still there?", []] and state == "running"
    api = "is part of the CustomService API; other services cannot call it"
    assert warnings == [
        f"'Stop' of service victim_py {api}",
        f"'StopCustomServices' of service victim_py {api}",
        f"'ThrowError' of service victim_py {api}",
        f"'Start' of service victim_py {api}",
        f"'SubmitAction' of service victim_py {api}",
        "'_secret' of service victim_py is private",
        "'plain' of service victim_py is not an async method",
        f"'StateUpdate' of service victim_py {api}",
    ]


def test_foreign_senders_get_results_and_failures(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"Pong": PONG}, {"Pong": {}, "Quiet": {"enabled": False}},
                         **{})
    (tmp_path / "services" / "Quiet.py").write_text(QUIET)

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            # a plugin or node sending to a service gets the action's result
            assert await run.bus.send("service:pong_py/add", {"a": 2, "b": 3}) == 5
            with pytest.raises(TypeError):  # the handler's own failure
                await run.bus.send("service:pong_py/add", {"a": 2, "b": "x"})
            with pytest.raises(ServiceNotRunning, match="quiet_py is disabled"):
                await run.bus.send("service:quiet_py/other", 1)
            assert run.runtime("quiet_py").state == "disabled"

    run_in_reactor(scenario, timeout=10)


QUEUE_USER = '''
from base_service import CustomService
from queue_message import QueueMessage

class QueueUser(CustomService):
    async def Start(self):
        # the original agent's services sometimes put messages on the queue themselves
        await self.queue.put(QueueMessage(self.id, "pong_py", "hello", None))
        self.queue.put_nowait(QueueMessage(self.id, "node:probe", "direct", "nowait"))
        try:
            self.queue.get_nowait()
        except RuntimeError as exc:
            await self.SubmitAction("node:probe", "get", str(exc))
'''


def test_the_queue_routes_like_submit_action(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"QueueUser": QUEUE_USER, "Pong": PONG})

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            assert await run.probe.wait(reactor, "hello") == [["pong_py", "queueuser_py"]]
            assert await run.probe.wait(reactor, "direct") == ["nowait"]
            assert "cannot be read" in (await run.probe.wait(reactor, "get"))[0]

    run_in_reactor(scenario, timeout=10)


def test_a_plain_asyncio_queue_works_outside_hadaemon() -> None:
    # A service's own unit test can construct it with an asyncio.Queue, as the original.
    import asyncio

    from hadaemon.services import CustomService

    class Mine(CustomService):
        async def Start(self) -> None:
            await self.SubmitAction("other_py", "act", {"x": 1})
            await self.ThrowError("bad", "E1", "described")

    async def main() -> list[QueueMessage]:
        queue: asyncio.Queue[QueueMessage] = asyncio.Queue()
        await Mine("mine_py", queue, {}).Start()
        return [queue.get_nowait(), queue.get_nowait()]

    first, second = asyncio.run(main())
    assert (first.source, first.destination, first.action, first.message) == (
        "mine_py", "other_py", "act", ({"x": 1},))
    assert (second.destination, second.action, second.message) == (
        "logger", "_error", ("bad", "E1", "described"))


def test_actions_may_await_deferreds_and_asyncio_alike(tmp_path: pathlib.Path) -> None:
    mixed = '''
    import asyncio
    from twisted.internet.defer import Deferred
    from base_service import CustomService

    class Mixed(CustomService):
        async def go(self, msg):
            d = Deferred()
            asyncio.get_running_loop().call_later(0.01, d.callback, 20)
            got = await d                       # the rest of hadaemon returns Deferreds
            await asyncio.sleep(0.01)
            failing = Deferred()
            asyncio.get_running_loop().call_later(0.01, failing.errback, KeyError("k"))
            try:
                await failing
            except KeyError:
                got += 1
            return got + msg.message[0]
    '''
    config = make_config(tmp_path, {"Mixed": mixed})

    async def scenario(reactor: Any) -> Any:
        async with running(config, reactor) as run:
            return await run.bus.send("service:mixed_py/go", 21)

    assert run_in_reactor(scenario, timeout=10) == 42
