"""The shared connection's one public face, ``MqttClient``, and who uses what of it."""

from __future__ import annotations

import pathlib
import re
from typing import Any

from twisted.internet.task import Clock

import hadaemon
from hadaemon.bus import Bus
from hadaemon.mqtt import MqttClient, MqttConnection, MqttSettings
from hadaemon.zigbee.testkit import FakeConnection

PACKAGE = pathlib.Path(hadaemon.__file__).parent


def test_the_connection_and_the_fake_offer_it() -> None:
    # (the plugin too: tests/mqtt/test_plugin.py; mypy checks all three statically)
    clock = Clock()
    connection = MqttConnection(clock, MqttSettings(client_id="x"))
    assert isinstance(connection, MqttClient)
    assert isinstance(FakeConnection(clock, Bus(clock)), MqttClient)
    assert not isinstance(object(), MqttClient)


def test_after_read_hooks_of_the_fake_run_once_a_batch_is_read() -> None:
    clock = Clock()
    fake = FakeConnection(clock, Bus(clock))
    got: list[Any] = []
    fake.subscribe("a/+", lambda message: got.append(message.topic))
    remove = fake.after_read(lambda: got.append("read done"))
    fake.deliver("a/1", {})
    fake.deliver("a/2", {})
    fake.read_done()
    remove()
    fake.read_done()
    assert got == ["a/1", "a/2", "read done"]


# A pattern rather than ast.parse, which failed here in the full run on CPython 3.11.7
# ("SystemError: AST constructor recursion depth mismatch").
_IMPORT = re.compile(
    r"^\s*(?:from\s+(hadaemon\.mqtt[\w.]*)\s+import|import\s+(hadaemon\.mqtt[\w.]*))",
    re.MULTILINE,
)


def _mqtt_imports(path: pathlib.Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [a or b for a, b in _IMPORT.findall(text)]


def test_adapters_use_the_mqtt_package_only_never_its_modules() -> None:
    users = [*sorted((PACKAGE / "zigbee").rglob("*.py")),
             *sorted((PACKAGE / "services").rglob("*.py"))]
    reaching_in = {str(path.relative_to(PACKAGE)): [m for m in _mqtt_imports(path)
                                                    if m != "hadaemon.mqtt"]
                   for path in users}
    assert {path: modules for path, modules in reaching_in.items() if modules} == {}
    # and they do use it (the check above would pass on an empty list)
    assert any(_mqtt_imports(path) for path in users)
