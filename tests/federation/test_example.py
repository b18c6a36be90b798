"""etc/federation runs as shipped: its Mosquitto config, then the hall and the office;
the hall's motion sensor reaches the office's node, which switches the office lamp and
tells the hall's service (``service:halllog_py@hall``)."""

from __future__ import annotations

import pathlib
import re
import shutil

from hadaemon.broker import find_mosquitto
from hadaemon.testing import ChildProcesses, DaemonProcess
from hadaemon.testing.processes import free_tcp_port, wait_for_port

ROOT = pathlib.Path(__file__).parents[2]


def test_the_example_of_two_daemons_on_one_broker(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    # A copy of the example as a fresh clone has it (the story plugin included), on a
    # free port instead of 18830, and someone in the hall every second, not every 15.
    shutil.copytree(ROOT / "etc" / "federation", tmp_path / "etc" / "federation")
    shutil.copytree(ROOT / "plugins", tmp_path / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))
    example = tmp_path / "etc" / "federation"
    port = free_tcp_port("127.0.0.1")
    for name in ("mosquitto.conf", "hall.toml", "office.toml"):
        path = example / name
        text = path.read_text().replace("18830", str(port))
        path.write_text(re.sub(r"every = 15\.0", "every = 1.0", text))
    mosquitto = find_mosquitto()
    assert mosquitto is not None
    conf = example / "mosquitto.conf"
    with (tmp_path / "mosquitto.log").open("wb") as log:
        processes.spawn([mosquitto, "-c", str(conf)], stdout=log, stderr=log, cwd=tmp_path)
    wait_for_port("127.0.0.1", port, timeout=30)
    hall = DaemonProcess(example / "hall.toml", processes=processes, cwd=tmp_path).start(60)
    office = DaemonProcess(example / "office.toml", processes=processes,
                           cwd=tmp_path).start(60)
    try:
        hall.wait_for_output("office: the hall is occupied, the office lamp follows "
                             "(from node:office_light@office)", 90)
        hall.wait_for_output("office: the hall is empty", 90)
    except BaseException:
        print(hall.output()[-5000:], office.output()[-5000:])
        raise
    assert office.stop() == 0
    assert hall.stop() == 0
    for daemon in (hall, office):
        assert "Traceback" not in daemon.output(), daemon.output()[-5000:]
