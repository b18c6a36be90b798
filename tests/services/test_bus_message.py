"""Services and the bus's typed message: a QueueMessage is handed on as it is, a message
from another world says who sent it, and an answer to ``msg.source`` reaches the sender
in its own world (a real node process here)."""

from __future__ import annotations

import pathlib
from typing import Any

from hadaemon.bus import Address, BusMessage
from hadaemon.services import QueueMessage
from hadaemon.testing import run_in_reactor, wait_until

from .helpers import make_config, running

SENDER = '''
from base_service import CustomService
from queue_message import QueueMessage


class Sender(CustomService):
    async def to_one(self, msg):
        self.sent = {"t": [1, 2, {"deep": 3.5}], "on": True}
        await self.SubmitAction("keeper_py", "take", self.sent)

    async def to_all(self, msg):
        self.sent = {"t": [1, 2, {"deep": 3.5}], "on": True}
        await self.SubmitAction("*", "take", self.sent)

    async def to_node(self, msg):
        self.sent = {"payload": [1, {"deep": 2}]}
        await self.SubmitAction("node:probe", "0", self.sent)

    async def twice(self, msg):
        # One QueueMessage put twice, its destination changed in between (the first
        # receiver sees the object as the sender left it, as with an asyncio.Queue).
        again = QueueMessage(self.id, "vandal_py", "note", "first")
        await self.queue.put(again)
        again.destination = "keeper_py"
        await self.queue.put(again)
'''

VANDAL = '''
from base_service import CustomService


class Vandal(CustomService):
    async def take(self, msg):
        self.got = msg.message[0]
        self.got["t"][2]["deep"] = "changed"
        self.got["t"].append(99)
        self.got["on"] = False

    async def note(self, msg):
        self.noted = msg
'''

KEEPER = '''
from base_service import CustomService


class Keeper(CustomService):
    async def take(self, msg):
        self.got = msg.message[0]

    async def note(self, msg):
        self.noted = msg

    async def who(self, msg):
        return msg.source
'''

FILES = {"Sender": SENDER, "Vandal": VANDAL, "Keeper": KEEPER}


def original() -> dict[str, Any]:
    return {"t": [1, 2, {"deep": 3.5}], "on": True}


def test_one_destination_takes_the_payload_as_it_is_a_broadcast_copies_for_the_others(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, FILES)

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            sender, vandal, keeper = (run.runtime(i).instance
                                      for i in ("sender_py", "vandal_py", "keeper_py"))
            # One destination: the sender's very object, in a service and in a node.
            await run.bus.send("service:sender_py/to_one", None)
            await wait_until(reactor, lambda: hasattr(keeper, "got"))
            assert keeper.got is sender.sent
            await run.bus.send("service:sender_py/to_node", None)
            [value] = await run.probe.wait(reactor, "0")
            assert value is sender.sent
            # Two: the first recipient takes it as it is, the other gets a copy, which the
            # first cannot change (however deep it changes its own).
            del keeper.got
            await run.bus.send("service:sender_py/to_all", None)
            await wait_until(reactor, lambda: hasattr(keeper, "got") and hasattr(vandal, "got"))
            await wait_until(reactor, run.idle)
            assert vandal.got is sender.sent and vandal.got["t"][2]["deep"] == "changed"
            assert keeper.got == original() and keeper.got is not sender.sent

    run_in_reactor(scenario, timeout=10)


def test_a_queue_message_sent_twice_reaches_each_destination_as_it_was_sent(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, FILES)

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            vandal, keeper = run.runtime("vandal_py").instance, run.runtime("keeper_py").instance
            await run.bus.send("service:sender_py/twice", None)
            await wait_until(reactor, lambda: hasattr(vandal, "noted") and hasattr(keeper, "noted"))
            # Each went where it was sent when it was sent, as a message of its own.
            assert vandal.noted is not keeper.noted
            assert vandal.noted.message == keeper.noted.message == ("first",)
            assert keeper.noted.destination == "keeper_py"

    run_in_reactor(scenario, timeout=10)


def test_msg_source_of_a_message_from_another_world_is_its_senders_address(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, FILES)

    async def scenario(reactor: Any) -> list[Any]:
        async with running(config, reactor) as run:
            bus = run.bus
            return [
                await bus.send("service:keeper_py/who", None, sender="node:n1"),
                await bus.send("service:keeper_py/who", None, sender="web:ui/answers"),
                await bus.send("service:keeper_py/who", None,
                               sender=Address("service", "sender_py")),
                await bus.send("service:keeper_py/who", None),
            ]

    assert run_in_reactor(scenario, timeout=10) == [
        "node:n1", "web:ui/answers", "sender_py", "bus"]


ANSWER = '''
from base_service import CustomService


class Answer(CustomService):
    async def ask(self, msg):
        # msg.source is the node ("node:asker"): its input 1 gets the answer.
        question = msg.message[0]["payload"]
        await self.SubmitAction(msg.source, "1", {"payload": f"{question}? yes",
                                                  "to": msg.source})
'''


def test_an_answer_to_msg_source_reaches_the_node_that_asked(tmp_path: pathlib.Path) -> None:
    """A real node's output wired to a service; the service answers ``msg.source``; the
    answer arrives at the node's input 1, which the node sends on to a sink."""
    from tests.nodes.helpers import make_config as nodes_config
    from tests.nodes.helpers import node
    from tests.nodes.helpers import running as nodes_running

    directory = tmp_path / "services"
    directory.mkdir()
    (directory / "Answer.py").write_text(ANSWER)
    config = nodes_config(
        tmp_path,
        # relay.py "tag": appends [id, input] to msg["path"], outputs on the input's index.
        [node("asker", "relay.py", inputs=2, outputs=2,
              wires=[["service:answer_py/ask"], ["test:sink/answers"]])],
        services={"directories": [str(directory)], "service": {"Answer": {}}},
    )

    async def scenario(reactor: Any) -> list[Any]:
        async with nodes_running(reactor, config) as run:
            await run.send("node:asker/0", {"payload": "lamp on"})
            await run.sink.wait(reactor, 1, "answers")
            return [m for _path, m in run.sink.messages]

    [answer] = run_in_reactor(scenario, timeout=30)
    assert answer == {"payload": "lamp on? yes", "to": "node:asker", "path": [["asker", 1]],
                      "source": "asker"}


def test_a_typed_endpoint_gets_a_services_message_with_its_sender(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, FILES)

    async def scenario(reactor: Any) -> list[BusMessage]:
        async with running(config, reactor) as run:
            got: list[BusMessage] = []
            run.bus.register("test:typed", got.append, typed=True)
            queue = run.runtime("sender_py").instance.queue
            queue.put_nowait(QueueMessage("sender_py", "test:typed", "x", {"n": 1}))
            await wait_until(reactor, lambda: got)
            return got

    [message] = run_in_reactor(scenario, timeout=10)
    assert message.address == Address("test", "typed", "x")
    assert message.payload == {"n": 1}
    assert message.sender == Address("service", "sender_py")
