"""Homegear's RPC methods as views of the device registry.

Whatever devices the registry holds (zigbee devices, the demo devices, any adapter's)
are reachable by peer id; system variables are peer 0, channel -1. Registry errors keep
their Homegear fault codes (-2 unknown device/channel, -5 unknown parameter or bad
value, -6 read-only, -1 not found); an unknown method is -32601. A value a device has
not reported yet reads as None.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon._version import __version__
from hadaemon.bus import Level
from hadaemon.nodes.faults import (
    INVALID_PARAMS,
    UNKNOWN_PARAMETER,
    UNKNOWN_PARAMSET,
    Fault,
    from_exception,
)
from hadaemon.registry import (
    SYSTEM_PEER_ID,
    UNKNOWN,
    Device,
    Registry,
    ValueType,
    VariableSpec,
)

RpcMethod = Callable[[str, list[Any]], Any]
"""``method(caller node id, params)`` -> value, Deferred, or raises a Fault."""

_ADJUST = re.compile(r"^\s*([-+*/])=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_TYPE_NAMES = {
    ValueType.BOOL: "BOOL",
    ValueType.INT: "INTEGER",
    ValueType.FLOAT: "FLOAT",
    ValueType.STRING: "STRING",
    ValueType.ENUM: "ENUM",
    ValueType.BYTES: "BINARY",
    ValueType.ARRAY: "ARRAY",
    ValueType.STRUCT: "STRUCT",
    ValueType.ANY: "STRING",
}


def _known(value: Any) -> Any:
    return None if value is UNKNOWN else value


def _int(method: str, params: list[Any], index: int, name: str, default: Any = ...) -> int:
    if index >= len(params):
        if default is ...:
            raise Fault(INVALID_PARAMS, f"{method}: missing parameter {name}")
        return int(default)
    value = params[index]
    if isinstance(value, bool) or not isinstance(value, int):
        raise Fault(INVALID_PARAMS, f"{method}: {name} must be an integer, got "
                    f"{type(value).__name__}")
    return value


def _str(method: str, params: list[Any], index: int, name: str, default: Any = ...) -> str:
    if index >= len(params):
        if default is ...:
            raise Fault(INVALID_PARAMS, f"{method}: missing parameter {name}")
        return str(default)
    value = params[index]
    if not isinstance(value, str):
        raise Fault(INVALID_PARAMS, f"{method}: {name} must be a string, got "
                    f"{type(value).__name__}")
    return value


def _opt(params: list[Any], index: int, default: Any) -> Any:
    return params[index] if index < len(params) else default


def adjust(spec_type: ValueType, current: Any, value: Any) -> Any:
    """Apply ``"!"`` (toggle) and ``"+=n"``/``"-=n"``/``"*=n"``/``"/=n"`` to ``current``.

    Any other value, and every value of a string variable, is returned unchanged.
    """
    if not isinstance(value, str) or spec_type in (ValueType.STRING, ValueType.ENUM):
        return value
    if value.strip() == "!":
        if current is UNKNOWN:
            raise Fault(UNKNOWN_PARAMETER, "cannot toggle a value that is not known yet")
        if not isinstance(current, bool) and current not in (0, 1):
            raise Fault(UNKNOWN_PARAMETER, f"cannot toggle the non-boolean value {current!r}")
        return not current if isinstance(current, bool) else 1 - current
    match = _ADJUST.match(value)
    if match is None:
        return value
    if current is UNKNOWN:
        raise Fault(UNKNOWN_PARAMETER, f"cannot apply {value!r} to a value not known yet")
    if isinstance(current, bool) or not isinstance(current, int | float):
        raise Fault(UNKNOWN_PARAMETER, f"cannot apply {value!r} to the value {current!r}")
    op, text = match.groups()
    operand: int | float = float(text) if any(c in text for c in ".eE") else int(text)
    try:
        result = _OPERATORS[op](current, operand)
    except ZeroDivisionError:
        raise Fault(UNKNOWN_PARAMETER, f"{value!r}: division by zero") from None
    if spec_type is ValueType.INT and isinstance(result, float):
        if not math.isfinite(result):
            raise Fault(UNKNOWN_PARAMETER, f"{value!r} gives {result} for an integer")
        result = round(result)
    return result


class RegistryMethods:
    """The RPC methods; ``methods`` maps each name to ``method(caller, params)``."""

    def __init__(self, registry: Registry, log_for: Callable[[str], Logger]) -> None:
        self.registry = registry
        self._log_for = log_for
        self.methods: dict[str, RpcMethod] = {
            "listDevices": self.list_devices,
            "getDeviceDescription": self.get_device_description,
            "getValue": self.get_value,
            "setValue": self.set_value,
            "getParamset": self.get_paramset,
            "putParamset": self.put_paramset,
            "getParamsetDescription": self.get_paramset_description,
            "getAllValues": self.get_all_values,
            "getSystemVariable": self.get_system_variable,
            "setSystemVariable": self.set_system_variable,
            "deleteSystemVariable": self.delete_system_variable,
            "getAllSystemVariables": self.get_all_system_variables,
            "writeLog": self.write_log,
            "getVersion": self.get_version,
        }

    # -- descriptions ------------------------------------------------------------------

    @staticmethod
    def _device_description(device: Device) -> dict[str, Any]:
        return {
            "ID": device.peer_id,
            "ADDRESS": device.key,
            "TYPE": device.type or device.source,
            "FAMILY": device.source,
            "INTERFACE": device.source,
            "NAME": device.name,
            "CHILDREN": [f"{device.key}:{i}" for i in sorted(device.channels)],
            "PARAMSETS": ["MASTER"],
            "FLAGS": 1,
            "VERSION": 1,
        }

    @staticmethod
    def _channel_description(device: Device, index: int) -> dict[str, Any]:
        channel = device.channel(index)
        return {
            "ID": device.peer_id,
            "ADDRESS": f"{device.key}:{index}",
            "CHANNEL": index,
            "INDEX": index,
            "TYPE": channel.type or channel.name or "CHANNEL",
            "NAME": channel.name,
            "PARENT": device.key,
            "PARENT_TYPE": device.type or device.source,
            "FAMILY": device.source,
            "PARAMSETS": ["MASTER", "VALUES"],
            "FLAGS": 1,
            "VERSION": 1,
        }

    @staticmethod
    def _select(description: dict[str, Any], fields: Any) -> dict[str, Any]:
        if isinstance(fields, list) and fields:
            return {k: v for k, v in description.items() if k in fields}
        return description

    def list_devices(self, caller: str, params: list[Any]) -> list[dict[str, Any]]:
        channels = _opt(params, 0, True)
        fields = _opt(params, 1, None)
        out = []
        for device in self.registry.devices():
            out.append(self._select(self._device_description(device), fields))
            if channels:
                for index in sorted(device.channels):
                    out.append(self._select(self._channel_description(device, index), fields))
        return out

    def get_device_description(self, caller: str, params: list[Any]) -> dict[str, Any]:
        method = "getDeviceDescription"
        peer_id = _int(method, params, 0, "peerId")
        channel = _int(method, params, 1, "channel", -1)
        device = self._device(peer_id)
        description = (
            self._device_description(device) if channel < 0
            else self._channel_description(device, channel)
        )
        return self._select(description, _opt(params, 2, None))

    def _device(self, peer_id: int) -> Device:
        try:
            return self.registry.device(peer_id)
        except Exception as exc:
            raise from_exception(exc) from None

    # -- values ------------------------------------------------------------------------

    def get_value(self, caller: str, params: list[Any]) -> Any:
        method = "getValue"
        peer_id = _int(method, params, 0, "peerId")
        channel = _int(method, params, 1, "channel")
        name = _str(method, params, 2, "variableName")
        if peer_id == SYSTEM_PEER_ID:
            return self._call(self.registry.get_system_variable, name)
        value = self._call(self.registry.get_value, peer_id, channel, name)
        if _opt(params, 3, False) is True:
            # Ask the device; the answer is whatever is known once it accepted the query.
            queried: Deferred[Any] = self.registry.query(peer_id, channel, [name])
            return queried.addCallback(
                lambda _: _known(self.registry.get_value(peer_id, channel, name))
            )
        return _known(value)

    def set_value(self, caller: str, params: list[Any]) -> Any:
        method = "setValue"
        peer_id = _int(method, params, 0, "peerId")
        channel = _int(method, params, 1, "channel")
        name = _str(method, params, 2, "variableName")
        if len(params) < 4:
            raise Fault(INVALID_PARAMS, f"{method}: missing parameter value")
        value = params[3]
        wait = _opt(params, 4, True) is not False
        if peer_id == SYSTEM_PEER_ID:
            current = self.registry.system_variables().get(name, UNKNOWN)
            value = adjust(ValueType.ANY, current, value)
            self._call(self.registry.set_system_variable, name, value)
            return None
        variable = self._call(self.registry.variable, peer_id, channel, name)
        value = adjust(variable.spec.type, self.registry.current(variable), value)
        written = self.registry.set_value(peer_id, channel, name, value)
        if wait:
            return written.addCallbacks(lambda _: None, _fault_failure)
        written.addErrback(self._log_failure, caller, method)
        return None

    def get_paramset(self, caller: str, params: list[Any]) -> dict[str, Any]:
        method = "getParamset"
        peer_id = _int(method, params, 0, "peerId")
        channel = _int(method, params, 1, "channel")
        key = _paramset_key(_opt(params, 2, "VALUES"))
        device = self._device(peer_id)
        chan = self._call(device.channel, channel)
        if key == "MASTER":
            return {}
        return {
            name: _known(self.registry.current(var))
            for name, var in chan.variables.items() if var.spec.readable
        }

    def put_paramset(self, caller: str, params: list[Any]) -> Any:
        method = "putParamset"
        peer_id = _int(method, params, 0, "peerId")
        channel = _int(method, params, 1, "channel")
        rest = params[2:]
        if rest and isinstance(rest[0], str):
            key, rest = _paramset_key(rest[0]), rest[1:]
        else:
            key = "VALUES"
        if not rest or not isinstance(rest[0], dict):
            raise Fault(INVALID_PARAMS, f"{method}: expected (peerId, channel[, paramset], "
                        "{name: value})")
        if key == "MASTER":
            return None
        device = self._device(peer_id)
        values: dict[str, Any] = {}
        for name, value in rest[0].items():
            var = self._call(device.variable, channel, name)
            values[name] = adjust(var.spec.type, self.registry.current(var), value)
        return self.registry.put_values(peer_id, channel, values).addCallbacks(
            lambda _: None, _fault_failure
        )

    def get_paramset_description(self, caller: str, params: list[Any]) -> dict[str, Any]:
        method = "getParamsetDescription"
        peer_id = _int(method, params, 0, "peerId")
        channel = _int(method, params, 1, "channel")
        key = _paramset_key(_opt(params, 2, "VALUES"))
        chan = self._call(self._device(peer_id).channel, channel)
        if key == "MASTER":
            return {}
        return {name: _describe_variable(var.spec) for name, var in chan.variables.items()}

    def get_all_values(self, caller: str, params: list[Any]) -> list[dict[str, Any]]:
        wanted: int | None = None
        if params and isinstance(params[0], int) and not isinstance(params[0], bool):
            wanted = params[0]
        devices = [self._device(wanted)] if wanted is not None else self.registry.devices()
        out = []
        for device in devices:
            channels = []
            for index in sorted(device.channels):
                variables = device.channels[index].variables
                channels.append({
                    "INDEX": index,
                    "PARAMSET": {
                        name: {
                            "VALUE": _known(self.registry.current(var)),
                            "TYPE": _TYPE_NAMES[var.spec.type],
                            "READABLE": var.spec.readable,
                            "WRITEABLE": var.spec.writable,
                        }
                        for name, var in variables.items()
                    },
                })
            out.append({
                "ID": device.peer_id,
                "NAME": device.name,
                "TYPE": device.type or device.source,
                "CHANNELS": channels,
            })
        return out

    # -- system variables ---------------------------------------------------------------

    def get_system_variable(self, caller: str, params: list[Any]) -> Any:
        name = _str("getSystemVariable", params, 0, "name")
        return self._call(self.registry.get_system_variable, name)

    def set_system_variable(self, caller: str, params: list[Any]) -> None:
        name = _str("setSystemVariable", params, 0, "name")
        if len(params) < 2:
            raise Fault(INVALID_PARAMS, "setSystemVariable: missing parameter value")
        self._call(self.registry.set_system_variable, name, params[1])

    def delete_system_variable(self, caller: str, params: list[Any]) -> None:
        name = _str("deleteSystemVariable", params, 0, "name")
        self._call(self.registry.delete_system_variable, name)

    def get_all_system_variables(self, caller: str, params: list[Any]) -> dict[str, Any]:
        return self.registry.system_variables()

    # -- misc ---------------------------------------------------------------------------

    def write_log(self, caller: str, params: list[Any]) -> None:
        message = _str("writeLog", params, 0, "message")
        level = _int("writeLog", params, 1, "level", int(Level.INFO))
        emit = {
            1: "critical", 2: "error", 3: "warn", 4: "info", 5: "debug"
        }.get(level, "info")
        getattr(self._log_for(caller), emit)("{message}", message=message)

    def get_version(self, caller: str, params: list[Any]) -> str:
        return f"hadaemon {__version__}"

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Fault:
            raise
        except Exception as exc:
            raise from_exception(exc) from None

    def _log_failure(self, failure: Failure, caller: str, method: str) -> None:
        self._log_for(caller).warn(
            "{method} (not waited for) failed: {error}",
            method=method, error=failure.getErrorMessage(),
        )


def _fault_failure(failure: Failure) -> Failure:
    """Turn a failed registry write into the fault the node sees."""
    return Failure(from_exception(failure.value))


def _paramset_key(value: Any) -> str:
    if value in ("VALUES", "MASTER"):
        return str(value)
    raise Fault(UNKNOWN_PARAMSET, f"Unknown parameter set {value!r}")


def _describe_variable(spec: VariableSpec) -> dict[str, Any]:
    operations = (1 if spec.readable else 0) | (2 if spec.writable else 0) | (
        4 if spec.readable else 0
    )
    out: dict[str, Any] = {
        "ID": spec.name,
        "TYPE": "ACTION" if spec.is_event else _TYPE_NAMES[spec.type],
        "OPERATIONS": operations,
        "FLAGS": 1,
        "UNIT": spec.unit or "",
    }
    if spec.minimum is not None:
        out["MIN"] = spec.minimum
    if spec.maximum is not None:
        out["MAX"] = spec.maximum
    if spec.values:
        out["VALUE_LIST"] = [v if isinstance(v, str | int | float | bool) else str(v)
                             for v in spec.values]
    return out


__all__ = ["RegistryMethods", "RpcMethod", "adjust"]
