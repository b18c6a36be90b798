"""The one topic matcher, shared by bus events and the MQTT connection: MQTT's rules."""

from __future__ import annotations

import pytest

import hadaemon.mqtt
from hadaemon.bus import Bus, Event, InvalidTopic, Lifecycle
from hadaemon.bus.topics import matcher, matches, segment, unescape, validate_filter, validate_topic


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/+", "a", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/#", "ab", False),
        ("a/#", "ab/c", False),
        ("+/+", "a/b", True),
        ("+", "", True),
        ("+", "a/b", False),
        ("#", "", True),
        ("+/#", "a", True),
        ("a/+/c", "a//c", True),
        ("a/+/c", "a/b/d", False),
        ("#", "$SYS/broker", False),
        ("+/broker", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("a/+", "a/$x", True),  # the $ rule is about the first level only
        ("zigbee2mqtt/#", "zigbee2mqtt/Lamp 1/set", True),
        # characters that mean something to a regular expression are plain text here
        ("a.b/+", "axb/c", False),
        ("a.b/+", "a.b/c", True),
        ("(x)*/#", "(x)*/y", True),
        ("(x)*/#", "xx/y", False),
        ("a/+/c", "a/line\nbreak/c", True),
        ("a/+", "a/b\n", True),
        ("a/b", "a/b\n", False),
        ("variable/+/+/+/temperature", "variable/zigbee2mqtt/7/1/temperature", True),
        ("variable/+/+/+/temperature", "variable/zigbee2mqtt/7/1/humidity", False),
        ("variable/+/+/+/a%2Fb", "variable/x/1/0/a%2Fb", True),
    ],
)
def test_topic_matching(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected
    assert bool(matcher(pattern)(topic)) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "#/", "a\x00"])
def test_invalid_filters_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(InvalidTopic):
        validate_filter(bad)
    with pytest.raises(InvalidTopic):
        matcher(bad)


def test_invalid_filter_messages_name_the_filter_and_the_rule() -> None:
    with pytest.raises(InvalidTopic, match=r"invalid filter 'a/#/b': '#' must be the last level"):
        matcher("a/#/b")
    with pytest.raises(InvalidTopic, match=r"'\+' and '#' must fill a whole level"):
        matcher("a+/b")


@pytest.mark.parametrize("bad", ["", "a/+", "a/#", "x\x00", "x" * 65536])
def test_invalid_topics_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTopic):
        validate_topic(bad)


def test_segment_keeps_a_value_one_level() -> None:
    assert segment("a/b") == "a%2Fb"
    assert segment("100%") == "100%25"
    assert segment(7) == "7"
    assert unescape(segment("50%/a%2Fb")) == "50%/a%2Fb"
    assert matches("variable/+", f"variable/{segment('a/b')}")


def test_bus_and_mqtt_share_the_one_matcher() -> None:
    assert hadaemon.mqtt.matches is matches
    assert hadaemon.mqtt.InvalidTopic is InvalidTopic
    assert hadaemon.mqtt.validate_filter is validate_filter


def test_bus_subscriptions_follow_the_same_rules() -> None:
    from twisted.internet.task import Clock

    bus = Bus(Clock())
    got: list[str] = []

    def keep(event: Event) -> None:
        got.append(event.topic)

    bus.subscribe("lifecycle/#", keep)
    bus.subscribe("+/x/+", keep)
    bus.publish(Lifecycle("mqtt", "connected"))
    bus.publish(Lifecycle("x", "started"))
    assert got == ["lifecycle/mqtt/connected", "lifecycle/x/started", "lifecycle/x/started"]
    with pytest.raises(InvalidTopic, match="must be the last level"):
        bus.subscribe("a/#/b", keep)
