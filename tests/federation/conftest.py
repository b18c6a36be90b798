"""A federated site for tests: real ``hadaemon run`` processes on real Mosquittos.

``site_factory()`` makes a :class:`Site`: brokers (one; two joined by a Mosquitto bridge;
or one with an ACL file and a password per host) and hosts, each a daemon with its own
directory, state dir, config and ``[daemon].name``. Everything is stopped at the test's
end, pass or fail, and a failing test gets the end of every daemon's output.
"""

from __future__ import annotations

import contextlib
import pathlib
import secrets
import signal
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

import pytest

from hadaemon.broker.configs import mosquitto_password_line
from hadaemon.testing import BlockingClient, Broker, ChildProcesses, DaemonProcess, write_config
from hadaemon.testing.fixtures import BrokerFactory
from hadaemon.testing.waiting import poll_until
from tests.federation.scenario import SITE

# Hosts keep their MQTT link alive with this (seconds): a host that stops answering is
# offline for the others within 1.5 times it (a killed one at once: its socket closes).
KEEPALIVE = 5


class Host:
    """One daemon of the site: ``start()``, ``kill()`` (SIGKILL), ``stop()`` (SIGTERM)."""

    def __init__(self, site: Site, name: str, broker: Broker, sections: Mapping[str, Any],
                 files: Mapping[str, str], password: str | None) -> None:
        self.site = site
        self.name = name
        self.broker = broker
        self.password = password
        self.directory = site.base / name
        self.directory.mkdir(parents=True, exist_ok=True)
        for relative, text in files.items():
            path = self.directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.sections = {key: dict(value) for key, value in sections.items()}
        self.runs: list[DaemonProcess] = []

    @property
    def daemon(self) -> DaemonProcess:
        return self.runs[-1]

    def config(self) -> dict[str, Any]:
        """The whole config of the next run (the test may change ``sections`` between)."""
        sections = {key: dict(value) for key, value in self.sections.items()}
        daemon = sections.setdefault("daemon", {})
        daemon.setdefault("name", self.name)
        daemon.setdefault("state_dir", "var")
        daemon.setdefault("stop_timeout", 10.0)
        plugins = list(daemon.get("plugins", []))
        for needed in ("mqtt", "federation"):
            if needed not in plugins:
                plugins.insert(0 if needed == "mqtt" else 1, needed)
        daemon["plugins"] = plugins
        mqtt = sections.setdefault("mqtt", {})
        # (no status_topic: with the federation enabled it follows the site)
        mqtt.update(host=self.broker.host, port=self.broker.port,
                    client_id=f"fed-{self.name}", keepalive=KEEPALIVE)
        if self.password is not None:
            mqtt.update(username=self.name, password=self.password)
        federation = sections.setdefault("federation", {})
        federation.setdefault("site", SITE)
        federation.setdefault("settle_delay", 0.5)
        return sections

    def start(self, wait_for: str = "hadaemon started:", timeout: float = 60.0) -> Host:
        run = len(self.runs) + 1
        config = write_config(self.directory / f"hadaemon-run{run}.toml", self.config())
        daemon = DaemonProcess(config, processes=self.site.processes)
        self.runs.append(daemon)
        daemon.start(timeout=timeout, wait_for=wait_for)
        return self

    @property
    def running(self) -> bool:
        return bool(self.runs) and self.daemon.proc is not None \
            and self.daemon.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a power cut would: no offline status, the broker's last will."""
        assert self.daemon.proc is not None
        self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.proc.wait(30)

    def stop(self) -> int:
        return self.daemon.stop(timeout=60)

    def output(self) -> str:
        return self.daemon.output() if self.runs else ""

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Wait for ``text`` in this run's output (fails with the output if it dies)."""
        self.daemon.wait_for_output(text, timeout)

    def count(self, text: str) -> int:
        return self.output().count(text)

    def wait_for_count(self, text: str, count: int, timeout: float = 60.0) -> None:
        poll_until(lambda: self.count(text) >= count, timeout,
                   f"{count} x {text!r} in {self.name}'s output")


class Site:
    """Brokers and hosts of one test; ``close()`` ends every process."""

    def __init__(self, base: pathlib.Path, processes: ChildProcesses,
                 brokers: BrokerFactory) -> None:
        self.base = base
        self.processes = processes
        self.brokers = brokers
        self.hosts: dict[str, Host] = {}
        self.passwords: dict[str, str] = {}
        self._clients: list[BlockingClient] = []

    # -- brokers -----------------------------------------------------------------------

    def broker(self, *, extra: Sequence[str] = (), persistent: bool = False) -> Broker:
        """A Mosquitto on a free port (``persistent``: its queues and retained messages
        survive a restart, as a real home's broker's would)."""
        lines = list(extra)
        if persistent:
            store = self.base / f"broker-store-{len(self.brokers.brokers) + 1}"
            store.mkdir(parents=True, exist_ok=True)
            lines += ["persistence true", f"persistence_location {store}/",
                      "autosave_interval 1"]
        return self.brokers(impl="mosquitto", extra_config=lines)

    def bridged_brokers(self, also: Sequence[str] = ()) -> tuple[Broker, Broker]:
        """Two Mosquittos, the second joined to the first by a bridge that carries the
        site's topics both ways (one link: no loop), and the trees named in ``also``
        (e.g. zigbee2mqtt's base topic)."""
        first = self.broker()
        second = self.brokers(impl="mosquitto", start=False, extra_config=[
            "connection to-first",
            f"address {first.host}:{first.port}",
            *(f"topic {tree}/# both 1" for tree in (SITE, *also)),
            "try_private true",
            "cleansession false",
            "restart_timeout 1 5",
            f"remote_clientid bridge-{secrets.token_hex(4)}",
            "bridge_protocol_version mqttv311",
            "notifications false",
        ])
        second.start()
        return first, second

    def acl_broker(self, hosts: Sequence[str]) -> Broker:
        """A Mosquitto with a password per host and the ACL of docs/federation.md (the
        same file as etc/federation/mosquitto.acl, with this test's site and hosts)."""
        probe_password = secrets.token_hex(8)
        broker = self.brokers(impl="mosquitto", start=False, username="probe",
                              password=probe_password)
        assert broker.password_path is not None
        lines = [broker.password_path.read_text().rstrip("\n")]
        for host in hosts:
            self.passwords[host] = secrets.token_hex(8)
            lines.append(mosquitto_password_line(host, self.passwords[host]))
        broker.password_path.write_text("\n".join(lines) + "\n")
        acl = broker.workdir / "mosquitto.acl"
        acl.write_text(acl_text(SITE, zigbee_hosts=hosts[:1]) + "\nuser probe\ntopic readwrite #\n")
        broker.extra_config = (*broker.extra_config, f"acl_file {acl}")
        broker.start()
        return broker

    # -- hosts -------------------------------------------------------------------------

    def host(self, name: str, broker: Broker, *, sections: Mapping[str, Any] | None = None,
             files: Mapping[str, str] | None = None) -> Host:
        made = Host(self, name, broker, sections or {}, files or {},
                    self.passwords.get(name))
        self.hosts[name] = made
        return made

    def client(self, broker: Broker, *, username: str | None = None,
               password: str | None = None) -> BlockingClient:
        """A plain MQTT client (a sensor, an intruder): closed at the end."""
        credentials: dict[str, Any] = {}
        if username is not None:
            credentials = {"username": username, "password": password}
        client = BlockingClient(broker, **credentials).connect()
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for host in self.hosts.values():
            if host.running:
                with contextlib.suppress(Exception):  # a hung one: killed below
                    host.stop()
        self.processes.cleanup()

    def report(self) -> str:
        return "\n".join(f"===== {name} (run {len(h.runs)}):\n{h.output()[-6000:]}"
                         for name, h in self.hosts.items())


EXAMPLE_ACL = pathlib.Path(__file__).parents[2] / "etc" / "federation" / "mosquitto.acl"


def acl_text(site: str, *, zigbee_hosts: Sequence[str] = ()) -> str:
    """The shipped Mosquitto ACL (etc/federation/mosquitto.acl, docs/federation.md) for
    ``site``, its zigbee2mqtt rights given to ``zigbee_hosts`` instead of the example's
    host "hall": each host writes under its own name, and requests and answers to the
    others only on the topics that name it as the sender."""
    text = EXAMPLE_ACL.read_text()
    shipped, zigbee = text.split("\nuser hall\n")
    lines = [shipped.replace("home/", f"{site}/")]
    for host in zigbee_hosts:
        lines.append(f"user {host}\n{zigbee}")
    return "\n".join(lines)


@pytest.fixture
def site_factory(tmp_path: pathlib.Path, processes: ChildProcesses,
                 broker_factory: BrokerFactory,
                 request: pytest.FixtureRequest) -> Iterator[Site]:
    """The test's site (no broker, no host yet); everything ends at teardown, and a failing
    test shows every daemon's output."""
    made = Site(tmp_path, processes, broker_factory)
    try:
        yield made
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(made.report())
        made.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def with_zigbee(sections: dict[str, Any]) -> dict[str, Any]:
    """``sections`` plus the Zigbee stick of host A: the simulator's sample network (no
    reports of its own: a test sends the sensor's, which trigger the probe's rounds)
    and the zigbee2mqtt adapter."""
    sections["daemon"]["plugins"] = [*sections["daemon"].get("plugins", []),
                                     "zigbee2mqtt_simulator", "zigbee2mqtt"]
    sections["zigbee2mqtt_simulator"] = {"report_interval": 0.0, "latency": 0.0}
    sections["zigbee2mqtt"] = {"initial_query": False}
    return sections
