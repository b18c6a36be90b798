"""Settings declared once: schema, defaults, typed values and old key names from one class."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, ClassVar

import pytest

from hadaemon.app import prepare
from hadaemon.config import Float, Int, Path, Settings, Str, read, setting, validate
from hadaemon.mqtt import MqttSettings
from hadaemon.nodes.settings import NodesSettings
from hadaemon.services.config import ServicesSettings, ServiceTable


@dataclasses.dataclass(frozen=True, kw_only=True)
class PumpSettings(Settings):
    section_doc: ClassVar[str] = "A pump."

    rate: float = setting(Float(default=2.0, min=0.5, doc="Litres per second."))
    name: str = setting(Str(doc="Required."))
    log: pathlib.Path | None = setting(Path(default="pump.log", doc="Its log."))
    tries: int = setting(Int(default=3, min=1), old_names=("attempts",))


def load(tmp_path: pathlib.Path, text: str) -> tuple[Any, list[str], list[str]]:
    path = tmp_path / "hadaemon.toml"
    path.write_text(text)
    config, errors = validate(read(path, environ={}), {"pump": PumpSettings.schema()})
    return config, [str(e) for e in errors], [str(w) for w in config.warnings]


def test_one_declaration_gives_schema_defaults_and_typed_values(tmp_path: pathlib.Path) -> None:
    schema = PumpSettings.schema()
    assert list(schema.fields) == ["rate", "name", "log", "tries"]
    assert schema.doc == "A pump."
    assert schema.fields["rate"].doc == "Litres per second." and schema.fields["name"].required
    config, errors, _ = load(tmp_path, '[pump]\nname = "p1"\nrate = 3\n')
    assert errors == []
    pump = PumpSettings.from_section(config.section("pump"))
    # an integer for a number is a float once validated: nobody casts it again
    assert (pump.rate, type(pump.rate), pump.name, pump.tries) == (3.0, float, "p1", 3)
    assert pump.log == tmp_path / "pump.log"  # relative to the config file
    assert PumpSettings(name="x").log == pathlib.Path("pump.log")  # in code: as declared
    with pytest.raises(dataclasses.FrozenInstanceError):
        pump.rate = 1.0  # type: ignore[misc]


def test_wrong_types_and_unknown_keys_keep_their_errors(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "hadaemon.toml"
    _, errors, _ = load(tmp_path, '[pump]\nname = "p"\nrate = "fast"\nrat = 1\n')
    assert errors == [
        f'{path}: [pump].rat: unknown key (did you mean "rate"?)',
        f'{path}: [pump].rate: expected a number, got "fast"',
    ]


def test_plugins_validate_with_their_declarations() -> None:
    from hadaemon.mqtt import MqttService
    from hadaemon.nodes import NodesPlugin
    from hadaemon.services import ServicesPlugin

    assert MqttService.schema is MqttSettings.schema()
    assert NodesPlugin.schema is NodesSettings.schema()
    assert ServicesPlugin.schema is ServicesSettings.schema()
    assert ServicesSettings.schema().fields["service"].value.section is ServiceTable.schema()


def test_mutable_defaults_are_not_shared() -> None:
    first, second = ServicesSettings(), ServicesSettings()
    first.pip_options.append("--quiet")
    assert second.pip_options == []
    assert ServicesSettings.schema().fields["pip_options"].default == []


def test_an_old_key_name_works_with_one_warning(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "hadaemon.toml"
    config, errors, warnings = load(tmp_path, '[pump]\nname = "p"\nattempts = 7\n')
    assert errors == []
    assert warnings == [f'{path}: [pump].attempts: deprecated name; call it "tries"']
    assert PumpSettings.from_section(config.section("pump")).tries == 7


def test_an_old_key_name_is_checked_under_the_name_written(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "hadaemon.toml"
    _, errors, _ = load(tmp_path, '[pump]\nname = "p"\nattempts = 0\n')
    assert errors == [f"{path}: [pump].attempts: expected a value >= 1, got 0"]
    _, errors, _ = load(tmp_path, '[pump]\nname = "p"\nattempts = 2\ntries = 3\n')
    assert errors == [
        f'{path}: [pump].attempts: old name of "tries", which is also given; keep "tries" only'
    ]


def test_backoff_keys_have_one_set_of_names_and_old_ones_still_work(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "hadaemon.toml"
    path.write_text(
        '[daemon]\nplugins = ["mqtt", "services", "nodes"]\n'
        "[mqtt]\nreconnect_min = 0.2\nreconnect_max = 5\n"
        "[services]\nrestart_max_delay = 7\n"
        "[nodes]\nrestart_delay_max = 9\n"
    )
    prepared = prepare(path)  # what hadaemon check prints, and run/twistd/embed log
    assert prepared.errors == []
    assert [line for line in prepared.warnings if "deprecated" in line] == [
        f'{path}: [mqtt].reconnect_min: deprecated name; call it "reconnect_delay"',
        f'{path}: [mqtt].reconnect_max: deprecated name; call it "reconnect_delay_max"',
        f'{path}: [services].restart_max_delay: deprecated name; call it "restart_delay_max"',
    ]
    config, _ = validate(read(path, environ={}), {
        "mqtt": MqttSettings.schema(), "services": ServicesSettings.schema(),
        "nodes": NodesSettings.schema(),
    })
    mqtt = MqttSettings.from_config(config.section("mqtt"))
    assert (mqtt.reconnect_delay, mqtt.reconnect_delay_max) == (0.2, 5.0)
    assert ServicesSettings.from_section(config.section("services")).restart_delay_max == 7.0
    assert NodesSettings.from_section(config.section("nodes")).restart_delay_max == 9.0
