"""Who may say what: a daemon drops, with a warning naming it, every message it cannot
trust (claimed host not the topic's, malformed, too large, unknown version, a device or
variable its owner does not have) and keeps running; a host never changes another's
registry. Real daemon, real broker, a raw client speaking the documented protocol."""

from __future__ import annotations

import pathlib
from typing import Any

from hadaemon import values
from hadaemon.testing import Broker, run_in_reactor
from tests.federation.inproc import SITE, RawHost, host_config, hosts, until

LEVEL = [{"name": "level", "type": "int", "access": 3}]


def test_untrusted_messages_dropped_with_warnings(tmp_path: pathlib.Path,
                                                  broker: Broker) -> None:
    b = host_config(tmp_path, "beta", broker, sections={"federation": {"max_payload": 1024}})

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, b) as (beta,):
            gamma = RawHost(broker, "gamma")
            try:
                gamma.status("online")
                await until(reactor, lambda: beta.fed.online("gamma"), "gamma online")

                def warned(text: str) -> Any:
                    return until(reactor, lambda: any(text in w for w in beta.warnings()),
                                 f"a warning with {text!r} (got {beta.warnings()})")

                # claims another host than the topic's
                gamma.send(gamma.topic("device", 5), {"peer": 5, "source": "raw", "key": "x",
                                                      "name": "Liar", "channels": []},
                           host="alpha", retain=True)
                await warned("claims to come from host 'alpha', but arrived on a topic of "
                             "host 'gamma'")
                # not msgpack, not a map, unknown version, too large, wrong peer
                gamma.send(gamma.topic("device", 6), b"\xc1\xc1 garbage", retain=True)
                await warned(f"{SITE}/gamma/device/6: not a msgpack payload")
                gamma.send(gamma.topic("device", 6), values.pack([1, 2]), retain=True)
                await warned("the payload is a list, not a map")
                gamma.send(gamma.topic("device", 6), values.pack({"v": 99, "host": "gamma"}),
                           retain=True)
                await warned("unknown payload version 99")
                gamma.describe(6, "Big " + "x" * 2000, LEVEL)
                await warned("more than [federation].max_payload (1024)")
                gamma.send(gamma.topic("device", 8), {"peer": 9, "source": "raw", "key": "x",
                                                      "name": "Wrong", "channels": []},
                           retain=True)
                await warned("describes peer 9, the topic says 8")
                gamma.send(gamma.topic("device", 10), {"peer": 10, "source": "raw", "key": "x",
                                                       "name": "Bad", "channels": [
                                                           {"index": 0, "variables": [
                                                               {"name": "t", "type": "cheese",
                                                                "access": 1}]}]},
                           retain=True)
                await warned("unknown type 'cheese'")
                assert all(d.info.get("host") != "gamma" for d in beta.registry.devices())

                # a good device, then values it does not have
                gamma.describe(7, "Good", LEVEL)
                good = await until(reactor, lambda: beta.mirror("gamma", "Good"), "Good")
                gamma.send(gamma.topic("value", 7, 0, "nope"), {"value": 1}, retain=True)
                await warned("device 7 of host 'gamma' has no variable 'nope' in channel 0")
                gamma.send(gamma.topic("devices"), {"peers": [0, 7]}, retain=True)
                gamma.send(gamma.topic("value", 99, 0, "level"), {"value": 1}, retain=True)
                await warned("host 'gamma' has no device 99 (not in its index)")
                # someone else's request inbox: the claimed sender is not the topic's
                gamma.send(f"{SITE}/beta/req/alpha", {"id": "1", "kind": "device.write",
                                                      "body": {}})
                await warned(f"{SITE}/beta/req/alpha: claims to come from host 'gamma', "
                             "but arrived on a topic of host 'alpha'")
                assert beta.fed.dropped >= 10

                # still running: a good value goes through after all that
                gamma.send(gamma.topic("value", 7, 0, "level"), {"value": 42}, retain=True)
                await until(reactor, lambda: beta.value(good.peer_id, 0, "level") == 42,
                            "level 42")
                # nothing but gamma's one device came in
                assert [d.name for d in beta.registry.devices()
                        if d.info.get("host") == "gamma"] == ["Good"]
                for topic in (5, 6, 7, 8, 10):
                    gamma.client.publish(gamma.topic("device", topic), b"", retain=True)
                await until(reactor, lambda: beta.mirror("gamma", "Good") is None,
                            "Good removed when its description is cleared")
            finally:
                gamma.close()

    run_in_reactor(scenario, timeout=90)


def test_warnings_are_rate_limited(tmp_path: pathlib.Path, broker: Broker) -> None:
    b = host_config(tmp_path, "beta", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, b) as (beta,):
            gamma = RawHost(broker, "gamma")
            try:
                gamma.status("online")  # (also: beta has subscribed once it sees it)
                await until(reactor, lambda: beta.fed.online("gamma"), "gamma online")
                for i in range(50):
                    gamma.send(gamma.topic("device", i), b"junk")
                await until(reactor, lambda: beta.fed.dropped >= 50, "50 dropped")
                # one warning for the burst (the rest counted into the next one)
                assert len(beta.warnings()) == 1, beta.warnings()
            finally:
                gamma.close()

    run_in_reactor(scenario, timeout=60)


def test_check_config_names_the_status_topic(tmp_path: pathlib.Path) -> None:
    """The [mqtt] status topic is the host's presence: with another site it follows it
    when unset, and must match it when set."""
    from hadaemon.config import read, validate
    from hadaemon.federation import Federation
    from hadaemon.mqtt import MqttService

    schemas = {"mqtt": MqttService.schema, "federation": Federation.schema}

    def problems(sections: dict[str, Any]) -> list[str]:
        raw = {"daemon": {"name": "pi", "plugins": ["mqtt", "federation"]}, **sections}
        config, errors = validate(read(raw, base_dir=tmp_path, environ={}), schemas)
        assert not errors
        return Federation.check_config(config.section("federation"), config)

    assert problems({}) == []
    assert problems({"federation": {"site": "home"},
                     "mqtt": {"status_topic": "home/pi/status"}}) == []
    # unset, it follows the site; set by hand, it must match
    assert problems({"federation": {"site": "home"}}) == []
    (problem,) = problems({"federation": {"site": "home"},
                           "mqtt": {"status_topic": "hadaemon/pi/status"}})
    assert problem == ("[federation] site 'home': this host's presence is the [mqtt] status "
                       "topic, which must be 'home/pi/status', not 'hadaemon/pi/status' "
                       "(leave [mqtt].status_topic unset: it follows the site)")
    (problem,) = problems({"federation": {"site": "a/+/b"}})
    assert "without '+', '#' or NUL" in problem


def test_description_round_trip_and_topic_levels() -> None:
    """What a host describes is what the others read back (no I/O: the codec alone)."""
    import pytest

    from hadaemon.federation import codec
    from hadaemon.federation.errors import PayloadTooLarge, Refused
    from hadaemon.federation.topics import Layout, level, unlevel
    from hadaemon.registry import Access, ChannelSpec, Device, ValueType, VariableSpec

    specs = [ChannelSpec(0, [VariableSpec("mode", ValueType.ENUM, Access.ALL,
                                          values=("a", "b"), label="Mode"),
                             VariableSpec("t", ValueType.FLOAT, Access.READ, unit="°C",
                                          minimum=-40, maximum=85.5, step=0.1)]),
             ChannelSpec(2, [VariableSpec("press", ValueType.STRING, Access.READ,
                                          is_event=True, extra={"raw": b"\x00\x01"})],
                         name="l2", type="button")]
    device = Device(5, "zigbee2mqtt", "0x00ff", "Hall", "sensor", specs, None,
                    {"model": "X", "odd": {1.5}}, {})
    payload = codec.encode("pi", codec.describe(device), limit=1 << 20, what="d")
    message = codec.decode("s/pi/device/5", "pi", payload, limit=1 << 20)
    assert message["info"] == {}  # not in the value model: left out, the device kept
    back = codec.read_channels("t", message["channels"])
    assert [(c.index, c.name, c.type) for c in back] == [(0, "", ""), (2, "l2", "button")]
    assert [list(c.variables) for c in back] == [list(c.variables) for c in specs]
    with pytest.raises(PayloadTooLarge, match="max_payload"):
        codec.encode("pi", {"x": "y" * 2000}, limit=1024, what="x")
    with pytest.raises(Refused, match="field 'peer' is '5', expected int"):
        codec.field("t", {"peer": "5"}, "peer", int)
    with pytest.raises(Refused, match="expected int"):
        codec.field("t", {"peer": True}, "peer", int)  # a bool is no peer id
    for text in ("a/b", "50%", "+#", "nul\x00", "plain", "ü"):
        assert "/" not in level(text) and "+" not in level(text) and unlevel(level(text)) == text
    layout = Layout("home/site")
    topic = layout.topic("pi", "value", 5, -1, "a/b+c")
    assert topic == "home/site/pi/value/5/-1/a%2Fb%2Bc"
    parsed = layout.parse(topic)
    assert parsed is not None and parsed.rest == ("5", "-1", "a/b+c")
    assert layout.parse("other/pi/value") is None
