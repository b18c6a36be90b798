"""``same``: whether a value changed, one rule for every layer (adapters and registry).

A device's report is compared with what is known (is it a change? does it confirm a
write?), and a wire value with a feature's declared values. Python's ``==`` is almost
the rule wanted, with three exceptions:

- ``bool`` is no number: ``True`` is not ``1``, ``False`` is not ``0`` (Python says they
  are equal). A variable going from 1 to True did change, and a device whose ``value_on``
  is ``1`` does not mean ``True``.
- Numbers compare by value, whatever their type: ``1`` and ``1.0`` are the same (Python
  agrees; the registry used to disagree). zigbee2mqtt speaks JSON, where a number has no
  int/float kind (it sends ``21`` for 21.0), and Homegear converts a write to the
  variable's own type: a write of ``21.0`` is confirmed by a report of ``21``, and a
  report of ``1.0`` after ``1`` is no change. Comparison is exact (``2**53 + 1`` is not
  ``2.0**53``); ``-0.0`` is ``0.0``.
- NaN is the same as NaN (Python says it is never equal to anything): a sensor that
  keeps reporting NaN is not changing, and a write of NaN can be confirmed.

Lists and dicts follow the same rules item by item (``[True]`` is not ``[1]``); a tuple is
the same as a list with the same items (the model sends a tuple as a list); dicts
compare as mappings (key order is no change). Other types are the same only when their
types are identical and ``==`` says so (an ``==`` that raises means "not the same"),
which makes a sentinel such as ``UNKNOWN`` the same only as itself.
"""

from __future__ import annotations

from math import isnan
from typing import Any

_BY_EQUALITY = frozenset((str, int, bool, bytes, type(None)))
_MISSING = object()


def same(a: Any, b: Any) -> bool:
    """Whether ``b`` is the same value as ``a`` (see the module docstring for the rule)."""
    if a is b:
        return True
    kind = type(a)
    if kind is type(b):
        if kind in _BY_EQUALITY:
            return bool(a == b)
        if kind is float:
            return a == b or (isnan(a) and isnan(b))
        if kind is dict:
            return _same_mapping(a, b)
        if kind is list or kind is tuple:
            return _same_items(a, b)
        return _equal(a, b)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, float) and isinstance(b, float):  # a subclass of float
        return a == b or (isnan(a) and isnan(b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)  # exact: 2**53 + 1 is not 2.0**53
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return _same_items(a, b)
    return False


def _same_items(a: list[Any] | tuple[Any, ...], b: list[Any] | tuple[Any, ...]) -> bool:
    if len(a) != len(b):
        return False
    return all(map(same, a, b))


def _same_mapping(a: dict[Any, Any], b: dict[Any, Any]) -> bool:
    if len(a) != len(b):
        return False
    for key, item in a.items():
        other = b.get(key, _MISSING)
        if other is _MISSING or not same(item, other):
            return False
    return True


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. an array whose == is elementwise: "not the same" is safe
        return False
