"""Remote writes and requests: correlated answers, errors, a timeout instead of a hang,
failing at once when the host goes, and a redelivered request served once. Real daemons,
a real broker, and a raw client speaking the documented protocol as the other host."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from hadaemon.bus import HostOffline
from hadaemon.federation import RemoteError, RemoteTimeout
from hadaemon.testing import Broker, run_in_reactor
from tests.federation.inproc import SITE, RawHost, host_config, hosts, until

LEVEL = [{"name": "level", "type": "int", "access": 3, "min": 0, "max": 100}]


def test_remote_write_answer_error_and_timeout(tmp_path: pathlib.Path, broker: Broker) -> None:
    b = host_config(tmp_path, "beta", broker, sections={"federation": {"request_timeout": 1.0}})

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, b) as (beta,):
            gamma = RawHost(broker, "gamma")
            try:
                gamma.status("online")
                gamma.describe(7, "Dimmer", LEVEL)
                dimmer = await until(reactor, lambda: beta.mirror("gamma", "Dimmer"), "Dimmer")
                # checked locally first (the description's range): nothing is sent
                with pytest.raises(Exception, match="above the maximum"):
                    await beta.registry.set_value(dimmer.peer_id, 0, "level", 101)

                # no answer: a clear error after request_timeout, never a hang
                started = reactor.seconds()
                with pytest.raises(RemoteTimeout, match=r"host 'gamma' did not answer the "
                                   r"device\.write request within 1 s"):
                    await beta.registry.set_value(dimmer.peer_id, 0, "level", 5)
                assert 0.9 <= reactor.seconds() - started < 10
                (request,) = gamma.requests()
                assert request["topic"] == f"{SITE}/gamma/req/beta"
                assert request["v"] == 1 and request["host"] == "beta"
                assert request["kind"] == "device.write"
                assert request["body"] == {"peer": 7, "channel": 0, "values": {"level": 5}}

                # answered: the write fires with the owner's answer
                d = beta.registry.set_value(dimmer.peer_id, 0, "level", 6)
                (request,) = await until(reactor, gamma.requests, "the second request")
                gamma.send(f"{SITE}/beta/resp/gamma", {"id": request["id"], "ok": True,
                                                      "result": None})
                await d
                # the owner's error, with its fault code (what a node's RPC call sees)
                d = beta.registry.set_value(dimmer.peer_id, 0, "level", 7)
                (request,) = await until(reactor, gamma.requests, "the third request")
                gamma.send(f"{SITE}/beta/resp/gamma", {"id": request["id"], "ok": False,
                                                      "error": {"type": "ReadOnly",
                                                                "message": "no way",
                                                                "code": -6}})
                with pytest.raises(RemoteError, match="gamma: ReadOnly: no way") as info:
                    await d
                assert info.value.fault_code == -6

                # an answer from another host than the one asked is dropped
                d = beta.registry.set_value(dimmer.peer_id, 0, "level", 8)
                (request,) = await until(reactor, gamma.requests, "the fourth request")
                delta = RawHost(broker, "delta")
                delta.send(f"{SITE}/beta/resp/delta", {"id": request["id"], "ok": True})
                await until(reactor, lambda: any("which was sent to 'gamma'" in w
                                                 for w in beta.warnings()), "the warning")
                assert not d.called
                delta.close()
                # the host goes offline while the request waits: it fails at once
                gamma.status("offline")
                with pytest.raises(HostOffline, match="gamma"):
                    await d
                assert beta.value(dimmer.peer_id, 0, "available") is False
            finally:
                gamma.close()

    run_in_reactor(scenario, timeout=90)


def test_redelivered_request_served_once(tmp_path: pathlib.Path, broker: Broker) -> None:
    b = host_config(tmp_path, "beta", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, b) as (beta,):
            calls: list[tuple[str, Any]] = []

            def count(sender: str, body: Any) -> Any:
                calls.append((sender, body))
                return {"n": len(calls)}

            beta.fed.serve("test.count", count)
            with pytest.raises(ValueError, match="served already"):
                beta.fed.serve("test.count", count)
            gamma = RawHost(broker, "gamma")
            try:
                gamma.client.subscribe(f"{SITE}/gamma/resp/+")
                gamma.status("online")
                await until(reactor, lambda: beta.fed.online("gamma"), "gamma online")
                request = {"id": "run1-1", "kind": "test.count", "body": "hi"}
                gamma.send(f"{SITE}/beta/req/gamma", request)
                gamma.send(f"{SITE}/beta/req/gamma", request)  # as QoS 1 may redeliver
                gamma.send(f"{SITE}/beta/req/gamma", {"id": "run1-2", "kind": "nothing",
                                                      "body": None})

                def answers() -> list[dict[str, Any]]:
                    from hadaemon import values
                    return [values.unpack(bytes(m.payload)) for m in gamma.client.pending()
                            if m.topic == f"{SITE}/gamma/resp/beta"]

                await until(reactor, lambda: len(answers()) == 3, "three answers")
                first, again, unknown = answers()
                assert calls == [("gamma", "hi")]
                assert first == again == {"v": 1, "host": "beta", "id": "run1-1", "ok": True,
                                          "result": {"n": 1}}
                assert unknown["ok"] is False and unknown["error"]["type"] == "UnknownKind"
                assert beta.fed.requests.duplicates == 1
            finally:
                gamma.close()

    run_in_reactor(scenario, timeout=60)


def test_bus_device_address_reaches_the_owner(tmp_path: pathlib.Path, broker: Broker) -> None:
    """``device:<mirror peer>`` on the bus (what a service's SubmitAction and a node's wire
    send) writes through the owner like ``setValue``; ``listDevices``' source names it."""
    a = host_config(tmp_path, "alpha", broker, plugins=("mqtt", "federation", "demo"))
    b = host_config(tmp_path, "beta", broker)

    async def scenario(reactor: Any) -> None:
        async with hosts(reactor, a, b) as (alpha, beta):
            lamp = await until(reactor, lambda: beta.mirror("alpha", "Demo lamp"), "lamp")
            await until(reactor, lambda: beta.fed.online("alpha"), "alpha online")
            await beta.bus.send(f"device:{lamp.peer_id}", {"brightness": 200, "state": True})
            local = alpha.registry.find("demo", "lamp")
            assert local is not None
            assert alpha.value(local.peer_id, 0, "brightness") == 200
            await until(reactor, lambda: beta.value(lamp.peer_id, 0, "brightness") == 200,
                        "the confirmed value back on beta")
            # a host never writes another's mirrors: alpha's own lamp only, by its owner
            with pytest.raises(RemoteError, match="UnknownDevice"):
                await beta.fed.request("alpha", "device.write", {
                    "peer": 10_000, "channel": 0, "values": {"x": 1}})

    run_in_reactor(scenario, timeout=60)
