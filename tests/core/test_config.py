"""Config: errors name the file and the key path; paths, env secrets, defaults."""

from __future__ import annotations

import pathlib

import pytest

from hadaemon.config import (
    Bool,
    ConfigErrors,
    Float,
    Int,
    List,
    Path,
    Section,
    Str,
    Table,
    format_key_path,
    load,
    read,
    validate,
)

Z2M = Section(
    {
        "port": Int(default=1883, min=1, max=65535),
        "host": Str(default="localhost"),
        "password": Str(default="", secret=True),
        "tls": Table(Section({"ca": Path(default=None), "verify": Bool(default=True)}),
                     default={}),
        "base_topic": Str(),  # required
    }
)


def write(tmp_path: pathlib.Path, text: str, name: str = "hadaemon.toml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: pathlib.Path, schemas: dict[str, Section | None] | None = None,
              environ: dict[str, str] | None = None) -> list[str]:
    _config, errors = validate(read(path, environ=environ or {}), schemas or {"zigbee2mqtt": Z2M})
    return [str(e) for e in errors]


def test_wrong_type_names_file_and_key(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, '[zigbee2mqtt]\nport = "abc"\nbase_topic = "z"\n')
    assert errors_of(path) == [f'{path}: [zigbee2mqtt].port: expected an integer, got "abc"']


def test_relative_file_name_is_shown_as_given(tmp_path: pathlib.Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc").mkdir()
    write(tmp_path / "etc", '[zigbee2mqtt]\nport = "abc"\nbase_topic = "z"\n')
    monkeypatch.chdir(tmp_path)
    assert errors_of(pathlib.Path("etc/hadaemon.toml")) == [
        'etc/hadaemon.toml: [zigbee2mqtt].port: expected an integer, got "abc"'
    ]


def test_many_kinds_of_error_reported_together(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path,
        """
[daemon]
plugins = ["a", 3]
stop_timout = 5
stop_timeout = -1

[zigbee2mqtt]
port = 70000
tls = {verify = "yes"}

[zigbe2mqtt]
x = 1

[log.levels]
"hadaemon.bus" = "loud"
""",
    )
    errors = errors_of(path)
    src = str(path)
    assert f"{src}: [daemon].plugins[1]: expected a string, got 3" in errors
    assert f'{src}: [daemon].stop_timout: unknown key (did you mean "stop_timeout"?)' in errors
    assert f"{src}: [daemon].stop_timeout: expected a value >= 0.5, got -1.0" in errors
    assert f"{src}: [zigbee2mqtt].port: expected a value <= 65535, got 70000" in errors
    assert f'{src}: [zigbee2mqtt].tls.verify: expected true or false, got "yes"' in errors
    assert f"{src}: [zigbee2mqtt].base_topic: missing required value" in errors
    assert any(e.startswith(f'{src}: [zigbe2mqtt]: unknown section (did you mean "zigbee2mqtt"?)')
               for e in errors)
    assert any(e.startswith(f'{src}: [log].levels."hadaemon.bus": expected one of') for e in errors)
    assert len(errors) == 8


def test_toml_syntax_error_names_file_and_line(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "[daemon]\nname = \n")
    with pytest.raises(ConfigErrors) as info:
        read(path)
    (error,) = info.value.errors
    assert str(error).startswith(f"{path}: invalid TOML:")
    assert "line 2" in str(error)


def test_a_missing_file_is_a_config_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigErrors, match="no such file"):
        read(tmp_path / "nope.toml")


def test_paths_are_relative_to_the_config_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "etc").mkdir()
    path = write(
        tmp_path / "etc",
        '[daemon]\nstate_dir = "../var"\nplugin_dirs = ["../plugins", "/abs"]\n'
        '[zigbee2mqtt]\nbase_topic = "z"\ntls = {ca = "certs/ca.pem"}\n',
    )
    config = load(path, {"zigbee2mqtt": Z2M}, environ={})
    assert config.core.state_dir == tmp_path / "var"
    assert config.core.plugin_dirs == [tmp_path / "plugins", pathlib.Path("/abs")]
    assert config.section("zigbee2mqtt")["tls"]["ca"] == tmp_path / "etc" / "certs" / "ca.pem"


def test_defaults_filled_in(tmp_path: pathlib.Path) -> None:
    config = load(write(tmp_path, '[zigbee2mqtt]\nbase_topic = "z"\n'), {"zigbee2mqtt": Z2M},
                  environ={})
    section = config.section("zigbee2mqtt")
    assert section["port"] == 1883
    assert section["tls"] == {"ca": None, "verify": True}
    assert config.core.stop_timeout == 45.0
    assert config.core.state_dir == tmp_path / "var"


def test_secrets_from_environment(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path,
        '[zigbee2mqtt]\nbase_topic = "z"\npassword = {env = "MQTT_PW"}\n'
        'port = {env = "MQTT_PORT", default = 1884}\n',
    )
    config = load(path, {"zigbee2mqtt": Z2M}, environ={"MQTT_PW": "s3cret"})
    assert config.section("zigbee2mqtt")["password"] == "s3cret"
    assert config.section("zigbee2mqtt")["port"] == 1884
    config = load(path, {"zigbee2mqtt": Z2M}, environ={"MQTT_PW": "x", "MQTT_PORT": "2000"})
    assert config.section("zigbee2mqtt")["port"] == 2000


def test_environment_errors_name_the_variable_not_the_secret(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path,
        '[zigbee2mqtt]\nbase_topic = "z"\npassword = {env = "MQTT_PW"}\n'
        'port = {env = "MQTT_PORT"}\n',
    )
    errors = errors_of(path, environ={"MQTT_PORT": "eighty"})
    assert sorted(errors) == [
        f"{path}: [zigbee2mqtt].password: environment variable MQTT_PW is not set",
        f'{path}: [zigbee2mqtt].port: expected an integer, got "eighty" '
        "(from environment variable MQTT_PORT)",
    ]


def test_section_of_plugin_that_failed_to_load_is_not_checked(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "[broken]\nanything = 1\n")
    assert errors_of(path, {"broken": None}) == []


def test_top_level_value_is_not_a_section(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "daemon = 3\n")
    assert f"{path}: [daemon]: expected a table ([daemon] section)" in errors_of(path)


def test_mapping_config_relative_to_base_dir(tmp_path: pathlib.Path) -> None:
    config = load({"daemon": {"state_dir": "st"}}, base_dir=tmp_path, environ={})
    assert config.core.state_dir == tmp_path / "st"
    assert config.source == "<config>"


def test_list_and_float_fields() -> None:
    section = Section({"xs": List(Int(), min_length=1, unique=True), "f": Float(default=1)})
    with pytest.raises(ConfigErrors) as info:
        load({"s": {"xs": [1, 1], "f": True}}, {"s": section}, environ={})
    assert [str(e) for e in info.value.errors] == [
        "<config>: [s].xs[1]: duplicate value 1",
        "<config>: [s].f: expected a number, got true",
    ]


def test_format_key_path_quotes_odd_keys() -> None:
    assert format_key_path(("log", "levels", "hadaemon.bus")) == '[log].levels."hadaemon.bus"'
    assert format_key_path(("nodes", "node", 2, "file")) == "[nodes].node[2].file"


def test_secret_values_never_shown(tmp_path: pathlib.Path) -> None:
    section = Section({"token": Int(secret=True)})
    path = write(tmp_path, '[s]\ntoken = "hunter2"\n')
    errors = [str(e) for e in validate(read(path, environ={}), {"s": section})[1]]
    assert errors == [
        f"{path}: [s].token: invalid value (expected an integer; the value is secret, not shown)"
    ]
    path = write(tmp_path, '[s]\ntoken = {env = "TOKEN"}\n')
    errors = [str(e) for e in validate(read(path, environ={"TOKEN": "hunter2"}),
                                       {"s": section})[1]]
    assert "hunter2" not in errors[0] and "TOKEN" in errors[0]


def test_config_reference_is_up_to_date() -> None:
    from hadaemon.config.reference import shipped_reference

    docs = pathlib.Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert docs.read_text() == shipped_reference(), (
        "docs/config.md is stale: run python -m hadaemon.config.reference > docs/config.md"
    )


def test_default_plugin_dir_is_next_to_the_config(tmp_path: pathlib.Path) -> None:
    config = load(write(tmp_path, "[daemon]\n"), environ={})
    assert config.core.plugin_dirs == [tmp_path / "plugins"]
    assert not config.core.plugin_dirs_explicit
    config = load(write(tmp_path, '[daemon]\nplugin_dirs = ["p"]\n'), environ={})
    assert config.core.plugin_dirs_explicit
