"""The shipped sample network (``hadaemon/zigbee/data``) and bridge payloads saved to
files: what the simulator serves, tests and benchmarks load."""

from __future__ import annotations

import json
import pathlib
from importlib import resources
from typing import Any


def sample_devices() -> list[Any]:
    """The shipped sample network (17 popular devices and the coordinator)."""
    return _data("bridge_devices_sample.json")


def sample_groups() -> list[Any]:
    return _data("bridge_groups_sample.json")


def _data(name: str) -> list[Any]:
    text = resources.files("hadaemon.zigbee").joinpath("data", name).read_text("utf-8")
    loaded: list[Any] = json.loads(text)
    return loaded


def load_json_file(path: pathlib.Path) -> Any:
    """A bridge payload saved to a file (what ``mosquitto_sub -C 1`` would save)."""
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["load_json_file", "sample_devices", "sample_groups"]
