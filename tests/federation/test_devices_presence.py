"""Hosts come and go: availability, failing at once, and resync with added and removed
devices, through real daemons on a real broker."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from hadaemon.bus import HostOffline
from hadaemon.registry import Access, ChannelSpec, ValueType, VariableSpec
from hadaemon.testing import Broker, run_in_reactor
from tests.federation.inproc import host_config, hosts, start_host, until


def test_offline_host_unavailable_then_resynced(tmp_path: pathlib.Path, broker: Broker) -> None:
    with_demo = host_config(tmp_path, "alpha", broker, plugins=("mqtt", "federation", "demo"))
    without_demo = host_config(tmp_path, "alpha", broker)
    b = host_config(tmp_path, "beta", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, b) as (beta,):
            alpha = await start_host(with_demo, reactor)
            lamp = await until(reactor, lambda: beta.mirror("alpha", "Demo lamp"), "lamp")
            first_peer = lamp.peer_id
            await until(reactor, lambda: beta.value(lamp.peer_id, 0, "available") is True,
                        "lamp available")
            assert beta.fed.online("alpha") and beta.fed.hosts() == {"alpha"}

            await alpha.daemon.stopService()  # a clean stop publishes "offline"
            await until(reactor, lambda: not beta.fed.online("alpha"), "alpha offline")
            for device in (beta.mirror("alpha", n) for n in
                           ("Demo lamp", "Demo thermometer", "alpha system variables")):
                assert device is not None
                assert beta.value(device.peer_id, 0, "available") is False, device
            # a write to an offline host fails at once, never waits
            d = beta.registry.set_value(lamp.peer_id, 0, "state", True)
            assert isinstance(d, Deferred) and d.called
            with pytest.raises(HostOffline, match="alpha"):
                await d

            # back with another device set: the demo's devices go, a new one comes
            alpha = await start_host(without_demo, reactor)
            alpha.registry.add_device("test", "extra", "Extra", [ChannelSpec(0, [
                VariableSpec("level", ValueType.INT, Access.READ)])], owner=None)
            extra = await until(reactor, lambda: beta.mirror("alpha", "Extra"), "extra")
            await until(reactor, lambda: beta.mirror("alpha", "Demo lamp") is None,
                        "the lamp removed on beta")
            assert beta.value(extra.peer_id, 0, "available") is True
            await alpha.daemon.stopService()

            # and back with the demo: the lamp has its old peer id on beta again
            alpha = await start_host(with_demo, reactor)
            lamp = await until(reactor, lambda: beta.mirror("alpha", "Demo lamp"), "lamp")
            assert lamp.peer_id == first_peer
            await until(reactor, lambda: beta.mirror("alpha", "Extra") is None,
                        "extra removed")
            await until(reactor, lambda: beta.value(lamp.peer_id, 0, "available") is True,
                        "lamp available again")
            await beta.registry.set_value(lamp.peer_id, 0, "brightness", 12)
            assert alpha.value(alpha.registry.find("demo", "lamp").peer_id, 0,  # type: ignore
                               "brightness") == 12
            await alpha.daemon.stopService()

    run_in_reactor(scenario, timeout=90)


def test_broker_restart_resynchronises(tmp_path: pathlib.Path, broker: Broker) -> None:
    """The broker crashes (its retained messages gone with it); values change meanwhile;
    everyone reconnects and the state is the same everywhere again, also on a host that
    arrives after."""
    a = host_config(tmp_path, "alpha", broker, plugins=("mqtt", "federation", "demo"))
    b = host_config(tmp_path, "beta", broker)
    c = host_config(tmp_path, "gamma", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, a, b) as (alpha, beta):
            lamp = await until(reactor, lambda: beta.mirror("alpha", "Demo lamp"), "lamp")
            local = alpha.registry.find("demo", "lamp")
            assert local is not None
            alpha.registry.report(local.peer_id, 0, "brightness", 10)
            await until(reactor, lambda: beta.value(lamp.peer_id, 0, "brightness") == 10, "10")

            broker.kill()
            await until(reactor, lambda: not beta.fed.online("alpha"), "alpha offline on beta")
            assert beta.value(lamp.peer_id, 0, "available") is False
            alpha.registry.report(local.peer_id, 0, "brightness", 55)  # while cut off
            alpha.registry.set_system_variable("scene", "night")
            broker.start()

            await until(reactor, lambda: beta.value(lamp.peer_id, 0, "available") is True,
                        "the lamp available again", timeout=30)
            await until(reactor, lambda: beta.value(lamp.peer_id, 0, "brightness") == 55,
                        "the change made while the broker was down")
            sysvars = await until(reactor, lambda: beta.mirror("alpha",
                                                               "alpha system variables"), "sv")
            await until(reactor, lambda: beta.value(sysvars.peer_id, -1, "scene") == "night",
                        "the new system variable")
            async with hosts(reactor, c) as (gamma,):
                late = await until(reactor, lambda: gamma.mirror("alpha", "Demo lamp"), "lamp")
                await until(reactor, lambda: gamma.value(late.peer_id, 0, "brightness") == 55,
                            "the state on a host that came after")
                assert gamma.value(late.peer_id, 0, "available") is True

    run_in_reactor(scenario, timeout=120)
