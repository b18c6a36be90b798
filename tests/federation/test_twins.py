"""Twins: a device this host has itself (same source and key: two zigbee2mqtt adapters on
one zigbee2mqtt) is never mirrored from another host, not even while this host's own
adapter is still listing its devices; the other devices of that source are mirrored once
the settle delay is over."""

from __future__ import annotations

import pathlib
from typing import Any

from hadaemon.bus import DeviceChanged
from hadaemon.registry import Access, ChannelSpec, ValueType, VariableSpec
from hadaemon.testing import Broker, run_in_reactor
from tests.federation.inproc import RawHost, host_config, hosts, until

LEVEL = {"name": "level", "type": "int", "access": 1}


def test_twins_wait_for_the_own_adapter_others_come_after_the_settle_delay(
    tmp_path: pathlib.Path, broker: Broker
) -> None:
    b = host_config(tmp_path, "beta", broker, sections={
        "federation": {"exclude_sources": ["raw"], "settle_delay": 2.0}})
    # gamma's devices are on the broker before beta starts (retained, as after its start)
    gamma = RawHost(broker, "gamma")
    gamma.status("online")
    gamma.describe(1, "Only on gamma", [LEVEL])  # source "raw", key "k1"
    gamma.describe(2, "On both", [LEVEL])        # key "k2": beta's adapter has it too
    gamma.send(gamma.topic("value", 1, 0, "level"), {"value": 7}, retain=True)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, b) as (beta,):
            held = beta.fed.mirror._held
            await until(reactor, lambda: {("gamma", 1), ("gamma", 2)} <= set(held),
                        "gamma's raw devices held")
            # beta's own adapter lists its devices meanwhile
            beta.registry.add_device("raw", "k2", "On both (beta's own)", [ChannelSpec(
                0, [VariableSpec("level", ValueType.INT, Access.READ)])], owner=None)
            only = await until(reactor, lambda: beta.mirror("gamma", "Only on gamma"),
                               "the device only gamma has, mirrored after the settle delay")
            assert beta.registry.get_value(only.peer_id, 0, "level") == 7  # held value too
            assert beta.mirror("gamma", "On both") is None
            assert [d.name for d in beta.registry.devices("raw")] == ["On both (beta's own)"]
            added = [e for e in beta.events if isinstance(e, DeviceChanged)
                     and e.change == DeviceChanged.ADDED and e.source == "raw@gamma"]
            assert [e.name for e in added] == ["Only on gamma"]
            # a description that comes after the settle delay is mirrored at once
            gamma.describe(3, "New on gamma", [LEVEL])
            await until(reactor, lambda: beta.mirror("gamma", "New on gamma"), "new device")

    try:
        run_in_reactor(scenario, timeout=60)
    finally:
        gamma.close()
