"""Hot reload of services: a saved service file (or a module of its directory it
imports) swaps in a freshly imported class, Stop then Start, while messages for it wait
in its mailbox (none fails, under traffic); broken code keeps the previous version; a
failing new Start is retried with the backoff; a new ``[services]`` section adds, removes
and changes services, the others running on.

Real service files in a temporary directory, through the plugin's reload interface
(hadaemon.reload.interfaces) as the reload core calls it."""

from __future__ import annotations

import pathlib
import textwrap
from typing import Any

import pytest
from twisted.internet.defer import Deferred, DeferredList

from hadaemon.aio import as_deferred
from hadaemon.bus import Lifecycle
from hadaemon.bus.errors import UnknownDestination
from hadaemon.config import Config
from hadaemon.reload.interfaces import Reconfigurable, RestartNeeded, WatchesFiles
from hadaemon.services.errors import ServiceNotRunning
from hadaemon.services.mailbox import ServiceState
from hadaemon.testing import run_in_reactor, sleep, wait_until
from tests.services import helpers
from tests.services.helpers import Run, running

ECHO = '''
import asyncio
from base_service import CustomService

VERSION = {version!r}


class Echo(CustomService):
    async def Start(self):
        await self.SubmitAction("node:probe", "started", [VERSION, __name__])

    async def Stop(self):
        await asyncio.sleep(0.05)  # a Stop that takes a while: messages arrive meanwhile
        await self.SubmitAction("node:probe", "stopped", VERSION)

    async def echo(self, msg):
        await asyncio.sleep(0.001)
        return [VERSION, msg.message[0]]
'''


def make_config(tmp_path: pathlib.Path, files: dict[str, str],
                services: dict[str, Any] | None = None, reload: str = "off",
                **options: Any) -> Config:
    """The services tests' config; the reload core off (these tests call the plugin's
    reload interface themselves), or "auto" (through the file watcher)."""
    daemon = {"state_dir": str(tmp_path / "var"), "plugins": ["services"], "reload": reload,
              "reload_settle": 0.02}
    return helpers.make_config(tmp_path, files, services, extra_sections={"daemon": daemon},
                               **options)


def echo(version: Any) -> str:
    return ECHO.format(version=version)


def service_file(tmp_path: pathlib.Path, name: str) -> pathlib.Path:
    return (tmp_path / "services" / f"{name}.py").resolve()


def rewrite(path: pathlib.Path, source: str) -> pathlib.Path:
    path.write_text(textwrap.dedent(source) if source.startswith("\n") else source)
    return path


def plugin_of(run: Run) -> Any:
    plugin: object = run.daemon.plugin("services")
    assert isinstance(plugin, WatchesFiles)
    assert isinstance(plugin, Reconfigurable)
    return plugin


def test_a_saved_service_file_swaps_in_the_new_class_and_no_message_fails_meanwhile(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, {"Echo": echo(1), "Other": echo(1).replace("Echo", "Other")})
    path = service_file(tmp_path, "Echo")

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            plugin = plugin_of(run)
            assert path in set(plugin.watched_files())
            await run.probe.wait(reactor, "started", 2, timeout=30)
            other_starts = run.orchestrator.supervisors["other_py"].starts
            sent: list[tuple[int, str]] = []  # (i, the service's state when sent)
            answers: dict[int, Any] = {}
            failures: list[Any] = []
            reloading = [True]

            async def traffic() -> None:
                # Five messages every few milliseconds, whatever the answers do (pacing,
                # not synchronisation): some arrive while the old Stop runs.
                i = 0
                pending: list[Deferred[Any]] = []
                while reloading[0] or i < 200:
                    for _ in range(5):
                        sent.append((i, str(run.runtime("echo_py").state)))
                        d = run.bus.send("service:echo_py/echo", i)
                        d.addCallbacks(_store(answers, i), failures.append)
                        pending.append(d)
                        i += 1
                    await sleep(reactor, 0.002)
                await DeferredList(pending, consumeErrors=True)

            flowing = as_deferred(traffic())
            await wait_until(reactor, lambda: len(answers) >= 50, 30, "traffic before")
            rewrite(path, echo(2))
            await plugin.files_changed(frozenset({path}))
            reloading[0] = False
            await flowing

            assert failures == []
            assert sorted(answers) == [i for i, _ in sent]  # every message answered once
            waited = [i for i, state in sent if state == "starting"]
            assert waited, "no message arrived during the reload"
            versions = [answers[i][0] for i in sorted(answers)]
            assert versions == sorted(versions) and versions[0] == 1 and versions[-1] == 2
            assert all(answers[i][0] == 2 for i in waited)  # they waited for the new one
            # the old instance was stopped before the new one started
            assert run.probe.values("stopped") == [1]
            modules = [name for _, name in run.probe.values("started") if name.endswith(".Echo")]
            assert len(modules) == 2 and modules[0] != modules[1]  # imported afresh
            assert run.orchestrator.supervisors["other_py"].starts == other_starts

    run_in_reactor(scenario, timeout=60)


def _store(answers: dict[int, Any], i: int) -> Any:
    def store(value: Any) -> None:
        answers[i] = value
    return store


def test_a_changed_module_it_imports_reloads_the_services_that_import_it_only(
    tmp_path: pathlib.Path,
) -> None:
    uses = '''
    from base_service import CustomService
    import helper
    import pkg

    class Uses(CustomService):
        async def word(self, msg):
            return helper.word()

        async def value(self, msg):
            return pkg.VALUE
    '''
    apart = '''
    from base_service import CustomService

    class Apart(CustomService):
        async def word(self, msg):
            return "apart"
    '''
    config = make_config(tmp_path, {"Uses": uses, "Apart": apart})
    directory = tmp_path / "services"
    rewrite(directory / "helper.py", "from words import WORD\n\ndef word():\n    return WORD\n")
    rewrite(directory / "words.py", "WORD = 'one'\n")
    words = (directory / "words.py").resolve()
    (directory / "pkg").mkdir()
    rewrite(directory / "pkg" / "__init__.py", "from .inner import VALUE\n")
    inner = rewrite(directory / "pkg" / "inner.py", "VALUE = 1\n").resolve()

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            plugin = plugin_of(run)
            assert await run.bus.send("service:uses_py/word", None) == "one"
            watched = set(plugin.watched_files())
            assert {words, (directory / "helper.py").resolve()} <= watched
            starts = {s: run.orchestrator.supervisors[s].starts for s in ("uses_py", "apart_py")}

            rewrite(words, "WORD = 'two'\n")  # imported by helper, imported by Uses
            await plugin.files_changed(frozenset({words}))
            assert await run.bus.send("service:uses_py/word", None) == "two"
            assert run.orchestrator.supervisors["uses_py"].starts == starts["uses_py"] + 1
            assert run.orchestrator.supervisors["apart_py"].starts == starts["apart_py"]

            assert inner in set(plugin.watched_files())  # a relative import in a package
            rewrite(inner, "VALUE = 2\n")
            await plugin.files_changed(frozenset({inner}))
            assert await run.bus.send("service:uses_py/value", None) == 2
            assert run.orchestrator.supervisors["apart_py"].starts == starts["apart_py"]

    run_in_reactor(scenario, timeout=60)


@pytest.mark.parametrize(("broken", "where", "message"), [
    ({"Echo": "\nclass Echo(\n"}, ("Echo", 2), "SyntaxError: "),
    ({"Echo": "import helper\n" + echo(2), "helper": "X = 1\nY = 1 / 0\n"},
     ("helper", 2), "ZeroDivisionError: division by zero"),
    ({"Echo": "import not_a_module_anywhere\n" + echo(2)},
     ("Echo", 1), "ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    ({"Echo": echo(2).replace("class Echo", "class Other")}, ("Echo", None),
     "the file Echo.py must define class Echo, but it defines Other"),
    ({"Echo": echo(2).replace("    async def Start", "    def __init__(self, *a):\n"
                              "        raise RuntimeError('no')\n\n    async def Start")},
     ("Echo", 10), "RuntimeError: no"),
])
def test_code_that_does_not_load_is_reported_by_file_and_line_and_the_old_version_runs_on(
    tmp_path: pathlib.Path, broken: dict[str, str], where: tuple[str, int | None],
    message: str,
) -> None:
    config = make_config(tmp_path, {"Echo": echo(1)})
    path = service_file(tmp_path, "Echo")

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            plugin = plugin_of(run)
            await run.probe.wait(reactor, "started", timeout=30)
            for name, source in broken.items():
                rewrite(service_file(tmp_path, name), source)
            await plugin.files_changed(frozenset({path}))
            errors = run.events.errors("service:echo_py")
            assert len(errors) == 1, [e.message for e in errors]
            file, line = where
            shown = str(service_file(tmp_path, file))
            expected = f"service echo_py not reloaded, the previous version keeps running: {shown}"
            assert errors[0].message.startswith(expected + (f":{line}: " if line else ": "))
            assert message in errors[0].message
            if line is not None:
                assert errors[0].details == {"file": shown, "line": line}
            assert await run.bus.send("service:echo_py/echo", "x") == [1, "x"]
            assert run.probe.values("stopped") == []  # never stopped
            assert str(run.runtime("echo_py").state) == "running"

            rewrite(path, echo(3))  # fixed
            await plugin.files_changed(frozenset({path}))
            assert await run.bus.send("service:echo_py/echo", "y") == [3, "y"]

    run_in_reactor(scenario, timeout=60)


def test_a_new_version_whose_start_fails_is_retried_with_the_backoff_and_messages_wait(
    tmp_path: pathlib.Path,
) -> None:
    flaky = '''
    from base_service import CustomService

    class Echo(CustomService):
        tries = 0

        async def Start(self):
            Echo.tries += 1
            if Echo.tries < 4:
                raise RuntimeError(f"not yet ({Echo.tries})")

        async def echo(self, msg):
            return ["flaky", msg.message[0]]
    '''
    config = make_config(tmp_path, {"Echo": echo(1), "Other": echo(1).replace("Echo", "Other")})
    path = service_file(tmp_path, "Echo")

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            plugin = plugin_of(run)
            await run.probe.wait(reactor, "started", 2, timeout=30)
            rewrite(path, flaky)
            await plugin.files_changed(frozenset({path}))
            waiting = run.bus.send("service:echo_py/echo", "held")
            assert await run.bus.send("service:other_py/echo", "z") == [1, "z"]
            # (a message that waited goes on once Start is called, as at any start)
            assert await waiting == ["flaky", "held"]

            def failed() -> list[Lifecycle]:
                return [e for e in run.events.events if isinstance(e, Lifecycle)
                        and e.component == "service:echo_py" and e.state == "failed"]

            await wait_until(reactor, lambda: len(failed()) >= 3
                             and starts_returned(run, "echo_py") == 2, 30,
                             "three failed Starts, then one that returned")
            delays = [e.details["restart_in"] for e in failed()]
            assert len(delays) == 3 and delays == sorted(delays) and delays[0] < delays[-1]
            assert len(run.events.errors("service:echo_py")) >= 3  # each Start reported

    run_in_reactor(scenario, timeout=60)


def starts_returned(run: Run, service_id: str) -> int:
    return sum(isinstance(e, Lifecycle) and e.component == f"service:{service_id}"
               and e.state == "started" for e in run.events.events)


def test_a_new_services_section_adds_removes_and_changes_services(
    tmp_path: pathlib.Path,
) -> None:
    props = '''
    from base_service import CustomService

    class Props(CustomService):
        async def Stop(self):
            await self.SubmitAction("node:probe", "props stopped", None)

        async def colour(self, msg):
            return self.GetPropertyValue("static", "colour")
    '''
    files = {"Echo": echo(1), "Gone": echo(1).replace("Echo", "Gone"), "Props": props,
             "Later": echo(1).replace("Echo", "Later")}
    old = make_config(tmp_path, files, {"Echo": {}, "Gone": {},
                                        "Props": {"static": {"colour": "red"}}})
    new = make_config(tmp_path, files, {"Echo": {}, "Later": {},
                                        "Props": {"static": {"colour": "blue"}}})
    restart = make_config(tmp_path, files, {"Echo": {}}, stop_timeout=3.0)

    async def scenario(reactor: Any) -> None:
        async with running(old, reactor) as run:
            plugin = plugin_of(run)
            await run.probe.wait(reactor, "started", 2, timeout=30)
            echo_runtime = run.runtime("echo_py")
            echo_instance, echo_starts = (echo_runtime.instance,
                                          run.orchestrator.supervisors["echo_py"].starts)
            assert await run.bus.send("service:props_py/colour", None) == "red"

            await plugin.reconfigure(new.section("services"), new)
            assert await run.bus.send("service:props_py/colour", None) == "blue"
            assert run.probe.values("props stopped") == [None]
            assert await run.bus.send("service:later_py/echo", "l") == [1, "l"]
            with pytest.raises(UnknownDestination):
                await run.bus.send("service:gone_py/echo", "g")
            assert run.probe.values("stopped") == [1]  # Gone's Stop
            # Echo did not change: the same instance, never restarted
            assert run.runtime("echo_py") is echo_runtime
            assert echo_runtime.instance is echo_instance
            assert run.orchestrator.supervisors["echo_py"].starts == echo_starts
            assert echo_runtime.state is ServiceState.RUNNING

            with pytest.raises(RestartNeeded, match=r"stop_timeout"):
                await plugin.reconfigure(restart.section("services"), restart)

    run_in_reactor(scenario, timeout=60)


def test_through_the_watcher_a_saved_service_is_reloaded_under_traffic(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, {"Echo": echo(1)}, reload="auto")
    path = service_file(tmp_path, "Echo")

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            await run.probe.wait(reactor, "started", timeout=30)
            answers: list[Any] = []
            failures: list[Any] = []
            i = 0

            async def batch() -> None:
                nonlocal i
                sends = [run.bus.send("service:echo_py/echo", i + k) for k in range(10)]
                i += 10
                for result in await DeferredList(sends, consumeErrors=True):
                    (answers if result[0] else failures).append(result[1])

            await batch()
            rewrite(path, echo(2))
            deadline = reactor.seconds() + 30
            while not answers or answers[-1][0] != 2:
                assert reactor.seconds() < deadline, "the new version never answered"
                await batch()
            assert failures == []
            assert [n for _, n in answers] == list(range(i))
            assert run.probe.values("stopped") == [1]

    run_in_reactor(scenario, timeout=60)


def test_a_service_that_did_not_load_at_start_starts_once_its_file_is_saved(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(tmp_path, {"Echo": "class Echo(:\n"}, {"Echo": {}, "Late": {}})
    path = service_file(tmp_path, "Echo")
    late = service_file(tmp_path, "Late")  # configured, no file yet

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            plugin = plugin_of(run)
            assert {path, late} <= set(plugin.watched_files())
            assert "echo_py" not in run.orchestrator.runtimes
            rewrite(path, echo(1))
            rewrite(late, echo(7).replace("Echo", "Late"))
            await plugin.files_changed(frozenset({path, late}))
            assert await run.bus.send("service:echo_py/echo", "e") == [1, "e"]
            assert await run.bus.send("service:late_py/echo", "l") == [7, "l"]

    run_in_reactor(scenario, timeout=60)


def test_a_changed_subscription_and_enabled_flag_apply_in_place(
    tmp_path: pathlib.Path,
) -> None:
    listener = '''
    from base_service import CustomService

    class Listener(CustomService):
        async def heard(self, msg):
            await self.SubmitAction("node:probe", "heard", msg.message[0]["topic"])
    '''
    files = {"Listener": listener, "Echo": echo(1)}
    old = make_config(tmp_path, files, {"Listener": {"subscribe": {"lifecycle/a/#": "heard"}},
                                        "Echo": {}})
    new = make_config(tmp_path, files, {"Listener": {"subscribe": {"lifecycle/b/#": "heard"}},
                                        "Echo": {"enabled": False}})

    async def scenario(reactor: Any) -> None:
        async with running(old, reactor) as run:
            plugin = plugin_of(run)
            await run.probe.wait(reactor, "started", timeout=30)
            run.bus.publish(Lifecycle("a", "started"))
            assert await run.probe.wait(reactor, "heard", timeout=30) == ["lifecycle/a/started"]
            await plugin.reconfigure(new.section("services"), new)
            run.bus.publish(Lifecycle("a", "started"))
            run.bus.publish(Lifecycle("b", "started"))
            assert await run.probe.wait(reactor, "heard", 2, timeout=30) == [
                "lifecycle/a/started", "lifecycle/b/started"]
            assert run.runtime("echo_py").state is ServiceState.DISABLED
            assert run.probe.values("stopped") == [1]
            with pytest.raises(ServiceNotRunning, match="disabled"):
                await run.bus.send("service:echo_py/echo", "x")
            await plugin.reconfigure(old.section("services"), old)  # and back
            assert await run.bus.send("service:echo_py/echo", "x") == [1, "x"]

    run_in_reactor(scenario, timeout=60)
