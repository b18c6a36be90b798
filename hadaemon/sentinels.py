"""The explicit "unknown" value: a variable nobody has reported yet is not None."""

from __future__ import annotations

from typing import Final


class _Unknown:
    __slots__ = ()
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
"""A value not reported yet (distinct from None, which devices may report)."""

Unknown = _Unknown
