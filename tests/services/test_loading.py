"""Loading service files: the seed's template unchanged, names, ids, import namespaces."""

from __future__ import annotations

import pathlib
import sys
import textwrap
from typing import Any

from hadaemon.bus import Lifecycle
from hadaemon.services import QueueMessage, ServicesPlugin
from hadaemon.services.loading import ServiceLoader
from hadaemon.testing import capture_logs, run_in_reactor, wait_until

from .helpers import make_config, running, write_services

# The template from the microServiceBus.com documentation (seed 003), character for
# character: the class keeps its placeholder name, so the file is YOUR_SERVICE_NAME.py.
SEED_TEMPLATE = '''\
from queue import Queue
from base_service import CustomService

class YOUR_SERVICE_NAME(CustomService):
    def __init__(self, id, queue, config):
        # Write your code here
        super(YOUR_SERVICE_NAME, self).__init__(id, queue, config)
    
    async def Start(self):
        try:
            await self.Debug("Started")
            # Write your code here
        except Exception as ex:
            await self.Debug(f"Failed to start: {ex}")

    async def Stop(self):
        try:
            # Write your code here
            await self.Debug("Stopped")
        except Exception as ex:
            await self.Debug(f"Failed to stop: {ex}")

'''  # noqa: W293 - the template's trailing whitespace is part of "unchanged"


def test_seed_template_runs_unchanged(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"YOUR_SERVICE_NAME": SEED_TEMPLATE})
    assert (tmp_path / "services" / "YOUR_SERVICE_NAME.py").read_text() == SEED_TEMPLATE

    async def scenario(reactor: Any) -> None:
        async with running(config, reactor) as run:
            runtime = run.runtime("your_service_name_py")
            assert runtime.state == "running"
            await wait_until(reactor, lambda: runtime.running_calls == 0)
        assert [e.state for e in run.events.events if isinstance(e, Lifecycle)
                and e.component == "service:your_service_name_py"] == [
            "starting", "started", "stopping", "stopped"
        ]

    with capture_logs() as logs:
        run_in_reactor(scenario, timeout=10)
    lines = [e["text"] for e in logs if e.get("log_namespace") ==
             "hadaemon.services.your_service_name_py" and "text" in e]
    assert lines == ["Started", "Stopped"]
    assert "Failed" not in logs.text()


MISMATCH = '''
from base_service import CustomService
class ReadGpio(CustomService):
    pass
'''

ECHO = '''
from base_service import CustomService
class Echo(CustomService):
    async def echo(self, msg):
        await self.SubmitAction("node:probe", "echo", msg.message[0])
'''


def test_load_errors_name_the_problem_and_the_others_run(tmp_path: pathlib.Path) -> None:
    files = {
        "ReadGPIO": MISMATCH,
        "Broken": "from base_service import CustomService\nclass Broken(CustomService:\n",
        "Exits": "import sys\nsys.exit(3)\n",
        "NotAService": "class NotAService:\n    pass\n",
        "Echo": ECHO,
        "Angry": textwrap.dedent('''
            from base_service import CustomService
            class Angry(CustomService):
                def __init__(self, id, queue, config):
                    raise ValueError("no config for me")
        '''),
    }
    services = {name: {} for name in files}
    services["Missing"] = {}
    services["echo"] = {}  # same id as Echo: echo_py
    config = make_config(tmp_path, files, services)

    async def scenario(reactor: Any) -> list[str]:
        async with running(config, reactor) as run:
            assert sorted(run.orchestrator.runtimes) == ["echo_py"]
            await run.bus.send("service:echo_py/echo", {"still": "working"})
            assert await run.probe.wait(reactor, "echo") == [{"still": "working"}]
            errors = [f"{e.source}: {e.message}" for e in run.events.errors()]
        assert any(e.startswith("service:readgpio_py: not loaded:") and "ReadGpio" in e
                   for e in errors), errors
        return errors

    with capture_logs() as logs:
        run_in_reactor(scenario, timeout=10)
    text = logs.text()
    path = tmp_path / "services"
    assert (f"{path / 'ReadGPIO.py'}: the file ReadGPIO.py must define class ReadGPIO, but it "
            "defines ReadGpio; the class name must match the file name") in text
    assert f"{path / 'Broken.py'}: failed to import: SyntaxError" in text
    assert f"{path / 'Exits.py'}: importing it called sys.exit(3)" in text
    assert "class NotAService is not a CustomService" in text
    assert "service Missing: no file Missing.py in" in text
    assert "services Echo and echo both have the id echo_py" in text
    assert "Angry('angry_py', queue, config) raised ValueError: no config for me" in text


PROPS = '''
from base_service import CustomService

class Props(CustomService):
    async def Start(self):
        await self.SubmitAction("node:probe", "props", {
            "id": self.id,
            "config": self.config,
            "pin": self.GetPropertyValue("static", "gpio_pin"),
            "token": self.GetPropertyValue("security", "token"),
            "interval": self.GetPropertyValue("general", "interval"),
            "missing": self.GetPropertyValue("static", "nope"),
            "bad_category": self.GetPropertyValue("nonsense", "x"),
            "state": self.GetState(),
            "settings": self.get_settings(),
            "queue_type": type(self.queue).__name__,
        })
'''


def test_properties_settings_and_config_shape(tmp_path: pathlib.Path) -> None:
    config = make_config(
        tmp_path, {"Props": PROPS},
        {"Props": {"static": {"gpio_pin": 17}, "security": {"token": {"env": "TOKEN"}},
                   "general": {"interval": 5}}},
        node_name="garage", settings={"organizationId": "org-1"}, environ={"TOKEN": "s3cret"},
    )

    async def scenario(reactor: Any) -> Any:
        async with running(config, reactor) as run:
            return (await run.probe.wait(reactor, "props"))[0]

    props = run_in_reactor(scenario, timeout=10)
    assert props["id"] == "props_py"
    assert props["config"] == {
        "generalConfig": [{"id": "enabled", "value": True}, {"id": "interval", "value": 5}],
        "staticConfig": [{"id": "gpio_pin", "value": 17}],
        "securityConfig": [{"id": "token", "value": "s3cret"}],
    }
    assert (props["pin"], props["token"], props["interval"]) == (17, "s3cret", 5)
    assert props["missing"] == "undefined" and props["bad_category"] == "undefined"
    assert props["state"] is True
    assert props["settings"] == {"nodeName": "garage", "organizationId": "org-1"}
    assert props["queue_type"] == "ServiceQueue"


UTILS_A = 'VALUE = "from directory a"\n'
UTILS_B = 'VALUE = "from directory b"\n'
ALPHA = '''
import utils
from helpers.deep import where
from base_service import CustomService
from queue_message import QueueMessage

class Alpha(CustomService):
    async def Start(self):
        import utils as again   # a function-level import resolves the same way
        await self.queue.put(QueueMessage(self.id, "node:probe", "a",
                                          [utils.VALUE, again.VALUE, where()]))
'''
BETA = '''
from utils import VALUE
from base_service import CustomService

class Beta(CustomService):
    async def Start(self):
        await self.SubmitAction("node:probe", "b", VALUE)
'''


def test_directories_are_separate_import_namespaces(tmp_path: pathlib.Path) -> None:
    a = write_services(tmp_path / "a", {"Alpha": ALPHA, "utils": UTILS_A})
    (a / "helpers").mkdir()
    (a / "helpers" / "__init__.py").write_text("")
    (a / "helpers" / "deep.py").write_text(
        "from . import sibling\nimport utils\n\n"
        "def where():\n    return sibling.NAME + utils.VALUE\n"
    )
    (a / "helpers" / "sibling.py").write_text('NAME = "sibling, "\n')
    b = write_services(tmp_path / "b", {"Beta": BETA, "utils": UTILS_B})
    config = make_config(tmp_path, {}, {"Alpha": {}, "Beta": {}}, directories=[str(a), str(b)])
    before = set(sys.modules)

    async def scenario(reactor: Any) -> tuple[Any, Any, set[str]]:
        async with running(config, reactor) as run:
            got_a = (await run.probe.wait(reactor, "a"))[0]
            got_b = (await run.probe.wait(reactor, "b"))[0]
            during = set(sys.modules) - before
        return got_a, got_b, during

    got_a, got_b, during = run_in_reactor(scenario, timeout=10)
    assert got_a == ["from directory a", "from directory a", "sibling, from directory a"]
    assert got_b == "from directory b"
    # nothing flat was added to sys.modules: no "utils", "base_service", "queue_message"
    assert not {"utils", "helpers", "base_service", "queue_message"} & during
    assert all(name.startswith("_hadaemon_services_") for name in during), during
    # and the stopped plugin forgot its modules
    assert not [n for n in sys.modules if n.startswith("_hadaemon_services_")]


def test_loader_finds_files_case_insensitively_and_refuses_ambiguity(
    tmp_path: pathlib.Path,
) -> None:
    write_services(tmp_path / "x", {"ReadGPIO": "from base_service import CustomService\n"
                                                "class ReadGPIO(CustomService): pass\n"})
    write_services(tmp_path / "y", {"Other": ""})
    loader = ServiceLoader([tmp_path / "x", tmp_path / "y"])
    try:
        assert loader.find("readgpio") == tmp_path / "x" / "ReadGPIO.py"
        assert loader.load("ReadGPIO").__name__ == "ReadGPIO"
        write_services(tmp_path / "y", {"ReadGPIO": ""})
        try:
            loader.find("ReadGPIO")
        except Exception as exc:
            assert "found in several places" in str(exc)
        else:
            raise AssertionError("ambiguous service file accepted")
    finally:
        loader.close()


def test_check_config_reports_problems_without_running_code(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "ran"
    files = {
        "ReadGPIO": MISMATCH,
        "Good": f"open({str(marker)!r}, 'w')\nfrom base_service import CustomService\n"
                "class Good(CustomService): pass\n",
        "Syntax": "class Syntax(:\n",
    }
    config = make_config(
        tmp_path, files, {**{n: {} for n in files}, "Missing": {}, "good": {}},
        com_topic="x/{nodes}", stop_timeout=9.9, state_update_timeout=1.0,
    )
    problems = ServicesPlugin.check_config(config.section("services"), config)
    text = "\n".join(problems)
    assert "service.ReadGPIO:" in text and "must define class ReadGPIO" in text
    assert "service.Syntax:" in text and "syntax error" in text
    assert "service.Missing: service Missing: no file Missing.py" in text
    assert "service.good: same id good_py as service.Good" in text
    assert "com_topic 'x/{nodes}' uses nodes" in text
    assert "[daemon].service_stop_timeout (10s)" in text
    assert not marker.exists()  # checking never runs service code
    assert len(problems) == 6, problems


def test_queue_message_keeps_the_original_shape() -> None:
    msg = QueueMessage("a_py", "b_py", "act", {"x": 1})
    assert msg.message == ({"x": 1},) and msg.message[0] == {"x": 1} and msg.payload == {"x": 1}
    assert (msg.source, msg.destination, msg.action) == ("a_py", "b_py", "act")
    assert "b_py" in repr(msg)
