"""The live event stream: events of every kind, resume after a dropped connection
without losing one, a gap said clearly when the id is too old, the wire tap, and a
client too slow to keep up dropped with a note (the daemon unharmed)."""

from __future__ import annotations

from hadaemon.bus import DeviceChanged, ErrorEvent, Level, Lifecycle, StatusUpdate
from hadaemon.testing import poll_until
from tests.web.helpers import EventReader, LiveDaemon, events, make_config


def set_sysvar(live: LiveDaemon, name: str, value: object) -> None:
    live.call(live.daemon.registry.set_system_variable, name, value)


def test_every_kind_of_event_arrives(live: LiveDaemon) -> None:
    with events(live) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.next()[0] == "hello"
        bus = live.daemon.bus
        set_sysvar(live, "kinds", 1)
        live.call(bus.publish, Lifecycle("test:kinds", "started"))
        live.call(bus.publish, ErrorEvent("test:kinds", "oops", Level.WARNING))
        live.call(bus.publish, StatusUpdate("test", "kinds", {"text": "fine"}))
        live.call(bus.publish, DeviceChanged("test", 77, "renamed", "Kinds"))
        variable = stream.until("variable", lambda d: d["name"] == "kinds")
        assert variable["value"] == 1 and variable["source"] == "system"
        assert stream.until("lifecycle")["component"] == "test:kinds"
        error = stream.until("error", lambda d: d["source"] == "test:kinds")
        assert error["level_name"] == "warning" and error["message"] == "oops"
        assert stream.until("status")["status"] == {"text": "fine"}
        assert stream.until("device")["peer_id"] == 77


def test_topics_filter_the_stream(live: LiveDaemon) -> None:
    with events(live, "/api/events?topics=variable/system/%2B/%2B/wanted") as stream:
        stream.next()
        set_sysvar(live, "unwanted", 1)
        set_sysvar(live, "wanted", 2)
        name, data = stream.next()
        assert (name, data["name"]) == ("variable", "wanted")


def test_resume_after_a_dropped_connection_loses_no_event(live: LiveDaemon) -> None:
    with events(live) as stream:
        stream.next()
        set_sysvar(live, "resume", 0)
        stream.until("variable", lambda d: d["name"] == "resume" and d["value"] == 0)
        last = stream.last_id
    # Disconnected: these happen while nobody listens.
    for value in range(1, 51):
        set_sysvar(live, "resume", value)
    assert last is not None
    with events(live, last_event_id=last) as again:
        hello = again.next()[1]
        assert hello["resumed"] is True
        set_sysvar(live, "resume", 51)
        seen = []
        while not seen or seen[-1] != 51:
            name, data = again.next()
            assert name != "gap"
            if name == "variable" and data["name"] == "resume":
                seen.append(data["value"])
        assert seen == list(range(1, 52))


def test_an_id_too_old_is_said_to_be_a_gap(tmp_path) -> None:
    with LiveDaemon(make_config(tmp_path, web={"port": 0, "journal_size": 10})) as live:
        with events(live) as stream:
            stream.next()
            set_sysvar(live, "old", 0)
            stream.until("variable", lambda d: d["name"] == "old")
            last = stream.last_id
        for value in range(1, 30):
            set_sysvar(live, "old", value)
        with events(live, last_event_id=last) as again:
            assert again.next()[1]["resumed"] is False
            name, data = again.next()
            assert name == "gap"
            assert "no longer kept" in data["message"] and last in data["message"]
        with events(live, last_event_id="abc-1") as restarted:
            restarted.next()
            assert "restarted" in restarted.until("gap")["message"]
        bad = live.client().get("/api/events", headers={"Last-Event-ID": "nonsense"})
        assert (bad.status, bad.error) == (400, "bad_last_event_id")


def test_the_wire_tap_shows_messages_along_a_node_output(live: LiveDaemon) -> None:
    client = live.client()
    poll_until(lambda: all(n["process"] == "running" and n["ready"]
                           for n in client.get("/api/nodes").json["nodes"]),
               what="nodes ready")
    with events(live, "/api/events?tap=first/0&topics=nothing") as stream:
        stream.next()
        live.call(live.daemon.bus.post, "node:first/0", {"payload": 42, "note": "tapped"})
        wire = stream.until("wire")
        assert wire["node"] == "first" and wire["output"] == 0
        assert wire["msg"]["payload"] == 42 and wire["msg"]["note"] == "tapped"
    # the tap goes with the client
    poll_until(lambda: live.call(lambda: not live.daemon.plugin("nodes")
                                 .dispatcher.router.taps), what="tap removed")


def test_a_client_that_does_not_read_is_dropped_and_the_daemon_goes_on(tmp_path) -> None:
    with LiveDaemon(make_config(tmp_path, web={"port": 0, "journal_size": 200})) as live:
        reader = EventReader(live.port, token=live.token)
        try:
            big = "x" * 8000
            for round_ in range(4000):  # up to 32 MB: far beyond the socket buffers
                set_sysvar(live, "flood", f"{round_}{big}")
                if not live.call(lambda: live.web.journal.streams):
                    break
            poll_until(lambda: not live.call(lambda: live.web.journal.streams),
                       what="the slow client dropped")
            lines = live.client().get("/api/log?source=hadaemon.plugin.web").json["lines"]
            assert any("dropped" in line["message"] for line in lines)
            assert live.client().get("/api/status").status == 200
        finally:
            reader.close()
