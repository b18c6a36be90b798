"""Settings declared once: a frozen dataclass whose fields carry their schema fields.

::

    @dataclass(frozen=True, kw_only=True)
    class HeartbeatSettings(Settings):
        section_doc: ClassVar[str] = "The heartbeat."

        interval: float = setting(Float(default=10.0, min=0.1, doc="Seconds between beats."))

From that one declaration come the schema (``HeartbeatSettings.schema()``: validation with
errors naming file, section and key, and the docs/config.md table), the defaults (the
schema field's, also the dataclass default) and the typed values
(``HeartbeatSettings.from_section(validated)``), so no value is cast again after
validation and no default is written twice.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from hadaemon.config.schema import Field, Section

_SPEC = "hadaemon.config.field"
_OLD_NAMES = "hadaemon.config.old_names"
_SCHEMAS: dict[type[Settings], Section] = {}


def setting(spec: Field, *, old_names: tuple[str, ...] = ()) -> Any:
    """A settings attribute declared by its schema field (type, default, range, doc).

    ``old_names`` are deprecated keys that still work, with a warning.
    """
    metadata = {_SPEC: spec, _OLD_NAMES: old_names}
    if spec.required:
        return dataclasses.field(metadata=metadata)
    default = spec.plain(spec.default)
    if isinstance(default, list | dict):
        return dataclasses.field(
            default_factory=functools.partial(copy.deepcopy, default), metadata=metadata
        )
    return dataclasses.field(default=default, metadata=metadata)


class Settings:
    """Base of declared settings; subclasses are ``@dataclass(frozen=True, kw_only=True)``."""

    section_doc: ClassVar[str] = ""
    """The section's description in docs/config.md."""

    @classmethod
    def schema(cls) -> Section:
        """The section's schema, made from the declared fields (once per class)."""
        section = _SCHEMAS.get(cls)
        if section is None:
            fields: dict[str, Field] = {}
            old_names: dict[str, str] = {}
            for item in dataclasses.fields(cls):  # type: ignore[arg-type]
                spec = item.metadata.get(_SPEC)
                if spec is not None:
                    fields[item.name] = spec
                    old_names.update((old, item.name) for old in item.metadata[_OLD_NAMES])
            section = _SCHEMAS[cls] = Section(fields, doc=cls.section_doc, old_names=old_names)
        return section

    @classmethod
    def from_section(cls, section: Mapping[str, Any], **extra: Any) -> Self:
        """The typed settings of a validated section; keys it lacks keep their defaults.

        ``extra`` sets attributes that are not config keys (derived values).
        """
        known = cls.schema().fields
        values = {key: value for key, value in section.items() if key in known}
        return cls(**values, **extra)


__all__ = ["Settings", "setting"]
