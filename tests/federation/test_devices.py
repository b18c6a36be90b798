"""Devices everywhere: a host's devices mirrored into another host's registry, through
real daemons on a real broker."""

from __future__ import annotations

import pathlib
from typing import Any

from hadaemon.bus import VariableChanged
from hadaemon.registry import UNKNOWN
from hadaemon.testing import Broker, run_in_reactor
from tests.federation.inproc import RawHost, host_config, hosts, until


def test_devices_values_and_writes_cross_hosts(tmp_path: pathlib.Path, broker: Broker) -> None:
    a = host_config(tmp_path, "alpha", broker, plugins=("mqtt", "federation", "demo"))
    b = host_config(tmp_path, "beta", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, a, b) as (alpha, beta):
            lamp = await until(reactor, lambda: beta.mirror("alpha", "Demo lamp"),
                               "alpha's lamp on beta")
            assert lamp.source == "demo@alpha"
            local = alpha.registry.find("demo", "lamp")
            assert local is not None and lamp.key == str(local.peer_id)
            await until(reactor, lambda: beta.registry.get_value(lamp.peer_id, 0, "available")
                        is True, "the lamp available on beta")
            # a value change on alpha reaches beta's subscribers as a VariableChanged
            seen: list[VariableChanged] = []
            beta.registry.subscribe(seen.append, source="demo@alpha")
            alpha.registry.report(local.peer_id, 0, "brightness", 77)
            await until(reactor, lambda: any(e.name == "brightness" and e.value == 77
                                             for e in seen), "brightness 77 on beta")
            assert beta.registry.get_value(lamp.peer_id, 0, "brightness") == 77
            # a write on beta goes to alpha's owner and returns its answer
            await beta.registry.set_value(lamp.peer_id, 0, "state", True, confirm=True,
                                          timeout=10)
            assert alpha.registry.get_value(local.peer_id, 0, "state") is True
            # system variables: alpha's are a device of alpha's on beta
            alpha.registry.set_system_variable("mode", "away")
            sysvars = await until(reactor, lambda: beta.mirror("alpha",
                                                               "alpha system variables"),
                                  "alpha's system variables on beta")
            await until(reactor, lambda: beta.value(sysvars.peer_id, -1, "mode")
                        == "away", "mode on beta")
            assert beta.registry.get_value(lamp.peer_id, 0, "brightness") is not UNKNOWN

    run_in_reactor(scenario, timeout=60)


def test_events_arrive_every_time_and_are_not_retained(tmp_path: pathlib.Path,
                                                       broker: Broker) -> None:
    a = host_config(tmp_path, "alpha", broker, plugins=("mqtt", "federation", "demo"))
    b = host_config(tmp_path, "beta", broker)
    c = host_config(tmp_path, "gamma", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, a, b) as (alpha, beta):
            button = await until(reactor, lambda: beta.mirror("alpha", "Demo button"), "button")
            local = alpha.registry.find("demo", "button")
            assert local is not None
            await until(reactor, lambda: beta.fed.online("alpha"), "alpha online")
            presses: list[VariableChanged] = []
            beta.registry.subscribe(presses.append, peer_id=button.peer_id, name="action")
            for _ in range(3):  # the same value three times: three events
                alpha.registry.report(local.peer_id, 0, "action", "single")
            await until(reactor, lambda: len(presses) == 3, "three presses on beta")
            assert all(p.is_event and p.value == "single" for p in presses)
            assert button.variable(0, "action").spec.is_event
            # a host that comes later sees the button, but no old press
            async with hosts(reactor, c) as (gamma,):
                late = await until(reactor, lambda: gamma.mirror("alpha", "Demo button"), "b")
                lamp = await until(reactor, lambda: gamma.mirror("alpha", "Demo lamp"), "l")
                await until(reactor, lambda: gamma.value(lamp.peer_id, 0, "available"), "up")
                assert gamma.value(late.peer_id, 0, "action") is UNKNOWN

    run_in_reactor(scenario, timeout=60)


def test_daemon_name_defaults_to_the_host_name(tmp_path: pathlib.Path) -> None:
    import socket

    from hadaemon.config import read, validate_core

    config, errors = validate_core(read({"daemon": {}}, base_dir=tmp_path, environ={}))
    assert not errors
    assert config.name == socket.gethostname().split(".")[0]
    for bad in ("a/b", "a+b", "x#", "me@there", "with space"):
        _, errors = validate_core(read({"daemon": {"name": bad}}, base_dir=tmp_path,
                                       environ={}))
        assert errors and "a daemon name may not contain" in str(errors[0]), bad


def test_excluded_sources_are_not_published(tmp_path: pathlib.Path, broker: Broker) -> None:
    a = host_config(tmp_path, "alpha", broker, plugins=("mqtt", "federation", "demo"),
                    sections={"federation": {"exclude_sources": ["demo"]}})
    b = host_config(tmp_path, "beta", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, a, b) as (alpha, beta):
            await until(reactor, lambda: beta.mirror("alpha", "alpha system variables"), "sv")
            local = alpha.registry.find("demo", "lamp")
            assert local is not None
            alpha.registry.report(local.peer_id, 0, "brightness", 3)
            alpha.registry.set_system_variable("after", 1)  # published after the lamp's
            sysvars = beta.mirror("alpha", "alpha system variables")
            assert sysvars is not None
            await until(reactor, lambda: beta.value(sysvars.peer_id, -1, "after") == 1, "1")
            assert [d.name for d in beta.registry.devices()
                    if d.info.get("host") == "alpha"] == ["alpha system variables"]

    run_in_reactor(scenario, timeout=60)


def test_values_before_their_description_and_the_index(tmp_path: pathlib.Path,
                                                       broker: Broker) -> None:
    """Retained messages of different topics come in no promised order: a value that
    comes before its device's description is held for it; the index removes mirrors of
    devices the owner no longer lists (a host that missed their clearing)."""
    b = host_config(tmp_path, "beta", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, b) as (beta,):
            gamma = RawHost(broker, "gamma")
            try:
                gamma.status("online")
                await until(reactor, lambda: beta.fed.online("gamma"), "gamma online")
                gamma.send(gamma.topic("value", 7, 0, "level"), {"value": 9}, retain=True)
                level = [{"name": "level", "type": "int", "access": 1}]
                for peer in (7, 8):
                    gamma.describe(peer, f"D{peer}", level)
                d7 = await until(reactor, lambda: beta.mirror("gamma", "D7"), "D7")
                await until(reactor, lambda: beta.mirror("gamma", "D8"), "D8")
                await until(reactor, lambda: beta.value(d7.peer_id, 0, "level") == 9,
                            "the value that came first")
                gamma.send(gamma.topic("devices"), {"peers": [7]}, retain=True)
                await until(reactor, lambda: beta.mirror("gamma", "D8") is None, "D8 gone")
                assert beta.mirror("gamma", "D7") is not None
                for topic in ("device/7", "device/8", "value/7/0/level", "devices"):
                    gamma.client.publish(gamma.topic(topic), b"", retain=True)
            finally:
                gamma.close()

    run_in_reactor(scenario, timeout=60)


def test_a_device_this_host_has_itself_is_not_mirrored(tmp_path: pathlib.Path,
                                                       broker: Broker) -> None:
    """Two adapters on one device (two hosts' zigbee2mqtt adapters on one bridge, here
    two demos: same source, same key): each host shows its own, never a mirror too; with
    ``exclude_sources`` on the second, a third host mirrors the first's only."""
    a = host_config(tmp_path, "alpha", broker, plugins=("mqtt", "federation", "demo"))
    b = host_config(tmp_path, "beta", broker, plugins=("mqtt", "federation", "demo"),
                    sections={"federation": {"exclude_sources": ["demo"]}})
    c = host_config(tmp_path, "gamma", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, a, b, c) as (alpha, beta, gamma):
            await until(reactor, lambda: gamma.mirror("alpha", "Demo lamp"), "on gamma")
            await until(reactor, lambda: beta.mirror("alpha", "alpha system variables"), "sv")
            await until(reactor, lambda: alpha.mirror("beta", "beta system variables"), "sv")
            alpha.registry.set_system_variable("last", True)  # after alpha's devices
            await until(reactor, lambda: any(
                beta.value(d.peer_id, -1, "last") is True for d in beta.registry.devices()
                if d.source == "system@alpha"), "alpha's last sysvar on beta")
            for host, other in ((alpha, "beta"), (beta, "alpha")):
                assert [d.name for d in host.registry.devices()
                        if d.info.get("host") == other] == [f"{other} system variables"]
            assert [d.source for d in gamma.registry.devices()
                    if d.name == "Demo lamp"] == ["demo@alpha"]

    run_in_reactor(scenario, timeout=60)
