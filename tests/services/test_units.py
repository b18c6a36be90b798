"""Plain functions and data of the services package, without a reactor."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure

import hadaemon.services
from hadaemon.aio import UserCodeExit
from hadaemon.bus import Bus, DeviceChanged, Lifecycle, VariableChanged
from hadaemon.sentinels import UNKNOWN
from hadaemon.services import SCHEMA, ServicesSettings, event_to_dict, service_id
from hadaemon.services.config import com_topic_problem
from hadaemon.services.reporting import Reporter
from hadaemon.services.tasks import ServiceCall
from hadaemon.services.upstream import encode_payload, format_topic
from hadaemon.testing import capture_logs


def test_public_exports_stay_what_they_are() -> None:
    assert hadaemon.services.__all__ == [
        "SCHEMA", "ActionRefused", "CustomService", "InvalidRequirement",
        "PipInstallFailed", "PipInstallPending", "PipPackageMissing",
        "QueueMessage", "ServiceError", "ServiceLoadError", "ServiceLoader", "ServiceMessage",
        "ServiceNotRunning", "ServiceQueue", "ServiceSettings", "ServiceState",
        "ServicesPlugin", "ServicesSettings", "Undeliverable",
        "event_to_dict", "service_id",
    ]
    for name in hadaemon.services.__all__:
        assert getattr(hadaemon.services, name) is not None


def test_ids_are_the_originals() -> None:
    assert service_id("ReadGPIO") == "readgpio_py"
    assert ServicesSettings().service_settings("YOUR_SERVICE_NAME").id == "your_service_name_py"


def test_restart_backoff_grows_to_its_maximum_or_never() -> None:
    clock = Clock()
    settings = ServicesSettings(restart_delay=1.0, restart_factor=2.0, restart_delay_max=10.0)
    backoff = settings.restart_backoff(clock)
    assert backoff is not None
    assert [backoff.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.started()
    clock.advance(10.0)  # a Start that ran the longest delay: over
    assert backoff.next_delay() == 1.0
    constant = ServicesSettings(restart_delay=0.5, restart_factor=1.0).restart_backoff(clock)
    assert constant is not None
    assert [constant.next_delay() for _ in range(9)][-1] == 0.5
    assert ServicesSettings(restart="never").restart_backoff(clock) is None


def test_settings_from_a_section_with_defaults(tmp_path: pathlib.Path) -> None:
    section = {**SCHEMA.defaults(), "service": {"A": {"mailbox_size": 3}, "B": {}}}
    settings = ServicesSettings.from_section(section, "my-daemon")
    assert settings.node_name == "my-daemon"
    assert [(s.name, s.mailbox_size, s.concurrency) for s in settings.services] == [
        ("A", 3, 100), ("B", 1000, 100)
    ]
    assert (settings.restart_delay, settings.restart_factor, settings.restart_delay_max) == (
        1.0, 2.0, 60.0)
    assert (settings.overflow, settings.pip_install, settings.com_qos) == ("wait", False, 1)


def test_config_shape_is_the_originals() -> None:
    service = ServicesSettings().service_settings(
        "A", {"enabled": False, "static": {"pin": 4}, "general": {"x": [1, 2]}})
    assert service.config_shape() == {
        "generalConfig": [{"id": "enabled", "value": False}, {"id": "x", "value": [1, 2]}],
        "staticConfig": [{"id": "pin", "value": 4}],
        "securityConfig": [],
    }


def test_events_become_plain_dicts() -> None:
    change = VariableChanged("zigbee2mqtt", 7, 1, "temperature", 21.5, 100.0)
    assert event_to_dict(change) == {
        "type": "VariableChanged", "topic": "variable/zigbee2mqtt/7/1/temperature",
        "source": "zigbee2mqtt", "peer_id": 7, "channel": 1, "name": "temperature",
        "value": 21.5, "timestamp": 100.0, "previous": None, "is_event": False,
    }
    assert change.previous is UNKNOWN
    assert event_to_dict(Lifecycle("mqtt", "connected", {"a": {"b": UNKNOWN}}))["details"] == {
        "a": {"b": None}}
    assert event_to_dict(DeviceChanged("x", 1, "added", "Lamp"))["change"] == "added"


def test_upstream_payloads_and_topics() -> None:
    assert encode_payload(b"\x00raw") == b"\x00raw"
    assert encode_payload("text") == "text"
    assert encode_payload({"t": 21.5, "ok": True}) == '{"t":21.5,"ok":true}'
    assert encode_payload({"when": pathlib.PurePosixPath("/x")}) == '{"when":"/x"}'
    assert format_topic("a/{node}/{service}", node="n", service="s_py") == "a/n/s_py"
    assert com_topic_problem("a/{node}/{service}/events") is None
    assert "only {node} and {service}" in str(com_topic_problem("a/{host}"))
    assert "invalid com_topic" in str(com_topic_problem("a/{node"))


def test_repeated_warnings_are_held_back_for_a_second() -> None:
    clock = Clock()
    reporter = Reporter(Bus(clock), clock.seconds)
    key = ("a_py", "mailbox full")
    assert reporter.throttled(key) == (True, 0)
    assert reporter.throttled(key) == (False, 1)
    assert reporter.throttled(key) == (False, 2)
    assert reporter.throttled(("b_py", "mailbox full")) == (True, 0)
    clock.advance(1.0)
    assert reporter.throttled(key) == (True, 2)  # shown again, with the count held back
    assert reporter.throttled(key) == (False, 1)


@pytest.mark.parametrize("name", ["Read-GPIO", "1abc", "a b", ""])
def test_service_names_must_be_identifiers(name: str) -> None:
    from hadaemon.config import read, validate

    raw = read({"services": {"service": {name: {}}}}, environ={})
    _, errors = validate(raw, {"services": SCHEMA})
    assert any("is not a service name" in str(e) for e in errors), errors


class _Owner:
    threshold = 10.0

    def __init__(self) -> None:
        self.failed: list[Failure] = []

    def call_finished(self, call: ServiceCall) -> None:
        pass

    def call_failed(self, call: ServiceCall, failure: Failure) -> None:
        self.failed.append(failure)

    def call_blocked(self, call: ServiceCall, seconds: float) -> None:
        pass


def test_a_bus_delivery_tells_its_one_listener_and_its_task_ends_quietly() -> None:
    async def ok() -> int:
        await asyncio.sleep(0)
        return 7

    async def exits() -> None:
        raise SystemExit(2)

    async def main() -> tuple[list[Any], list[Any]]:
        loop = asyncio.get_running_loop()
        owner, told = _Owner(), []
        calls = [ServiceCall(c, owner, "act", loop, "sender", via_bus=True)
                 for c in (ok(), exits(), ok())]
        for call in calls:
            call.when_done(lambda outcome, tag: told.append((tag, outcome)), "tag")
        calls[2].when_done(lambda outcome: 1 / 0)  # a broken listener: logged only
        tasks = [call.start("service:x/act") for call in calls]
        await asyncio.gather(*tasks)
        return told, [task.result() for task in tasks]

    with capture_logs() as logs:
        told, results = asyncio.run(main())
    assert len(told) == 2 and {tag for tag, _ in told} == {"tag"}
    outcomes = [outcome for _, outcome in told]
    assert 7 in outcomes and any(isinstance(o, Failure) and o.check(UserCodeExit)
                                 for o in outcomes)
    assert results == [7, None, 7]  # the tasks end quietly, a failure included
    assert "the listener of act failed" in logs.text() and "ZeroDivisionError" in logs.text()
