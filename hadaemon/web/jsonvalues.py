"""Registry values as JSON and back: the value model has bytes, big ints and NaN; JSON not.

``bytes`` travel as ``{"$bytes": "<base64>"}``, non-finite floats as the strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"``, an unknown value (nothing reported yet) as
``null`` with ``"known": false`` beside it where the API shows values. Plain functions.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from hadaemon.sentinels import UNKNOWN

BYTES_KEY = "$bytes"


class BadValue(ValueError):
    """A JSON value that is no value of the model (e.g. ``$bytes`` that is not base64)."""


def to_json(value: Any) -> Any:
    """A JSON-serialisable form of a value of the model (UNKNOWN becomes None)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if kind is dict:
        return {str(k): to_json(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [to_json(v) for v in value]
    if kind is bytes or kind is bytearray:
        return {BYTES_KEY: base64.b64encode(value).decode("ascii")}
    if value is UNKNOWN:
        return None
    if isinstance(value, str):  # subclasses (enums) as their plain value
        return str(value)
    if isinstance(value, bool | int):
        return bool(value) if isinstance(value, bool) else int(value)
    if isinstance(value, float):
        return to_json(float(value))
    return repr(value)


def from_json(value: Any, where: str = "value") -> Any:
    """A value of the model from decoded JSON (``{"$bytes": ...}`` becomes bytes)."""
    if isinstance(value, dict):
        if set(value) == {BYTES_KEY}:
            encoded = value[BYTES_KEY]
            if not isinstance(encoded, str):
                raise BadValue(f"{where}: {BYTES_KEY} takes a base64 string")
            try:
                return base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise BadValue(f"{where}: {BYTES_KEY} is not valid base64") from None
        return {k: from_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON of a document already made of JSON types."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=repr).encode()
