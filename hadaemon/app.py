"""Loading a config with its plugins: shared by ``hadaemon run``, ``check``, twistd, embedding."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from twisted.logger import globalLogPublisher

from hadaemon.config import Config, ConfigError, ConfigErrors, read, validate, validate_core
from hadaemon.logs import make_output_observer
from hadaemon.plugin import Catalog, discover_for, plan
from hadaemon.usercode import contain


@dataclass
class Prepared:
    """A validated config, the plugin catalog, and everything found wrong on the way."""

    config: Config
    catalog: Catalog
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        if self.errors:
            raise ConfigErrors([ConfigError("", (), e) for e in self.errors])


def prepare(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    strict: bool = True,
) -> Prepared:
    """Read, discover plugins, validate every section.

    With ``strict`` (``hadaemon check``), a plugin that is enabled but cannot be loaded is
    an error; otherwise it is a warning and the daemon runs without it.
    """
    raw = read(source, base_dir=base_dir, environ=environ)
    core, _ = validate_core(raw)
    catalog = discover_for(core)
    config, config_errors = validate(raw, catalog.schemas())
    errors = [str(e) for e in config_errors]
    warnings = [str(w) for w in config.warnings]
    enabled = set(config.core.plugins)
    for problem in catalog.problems:
        text = str(problem)
        if problem.traceback and strict:
            text += "\n" + problem.traceback.rstrip()
        if problem.name in enabled and strict:
            errors.append(f"{raw.source}: [daemon].plugins: {text}")
        else:
            warnings.append(text)
    for index, name in enumerate(config.core.plugins):
        if name not in catalog.plugins and not catalog.problems_for(name):
            known = ", ".join(sorted(catalog.plugins)) or "none found"
            message = (
                f"{raw.source}: [daemon].plugins[{index}]: unknown plugin {name!r} "
                f"(available: {known})"
            )
            (errors if strict else warnings).append(message)
    # What plugins declare they need: a plugin that could not start (its requirement is
    # not enabled, or they require each other) is an error for ``check``.
    factories = {name: info.factory for name, info in catalog.plugins.items()}
    for reason in plan(config.core.plugins, factories, config.section).refused.values():
        (errors if strict else warnings).append(f"{raw.source}: [daemon].plugins: {reason}")
    if strict and not errors:
        errors.extend(_plugin_checks(config, catalog))
    for name in raw.data:
        if name in catalog.plugins and name not in enabled:
            warnings.append(
                f"{raw.source}: [{name}]: plugin {name!r} is configured but not enabled "
                "in [daemon].plugins"
            )
    return Prepared(config, catalog, errors, warnings)


def _plugin_checks(config: Config, catalog: Catalog) -> list[str]:
    # Checks beyond the schema (a file that must compile, an automation that must
    # type-check): a plugin factory may offer check_config(section, config) -> [problems].
    problems: list[str] = []
    for name in config.core.plugins:
        info = catalog.plugins.get(name)
        check = getattr(info.factory, "check_config", None) if info else None
        if not callable(check):
            continue
        try:
            found = check(config.section(name), config)
        except BaseException as exc:  # sys.exit() too; a real Ctrl+C goes on up
            error = contain(exc)
            found = [f"the check itself failed: {type(error).__name__}: {error}"]
        problems.extend(f"{config.source}: [{name}]: {problem}" for problem in found)
    return problems


def add_file_log(config: Config, stream: IO[str] | None = None) -> IO[str] | None:
    """Send the log to ``[log].file`` in ``[log].format`` (``-`` means the given stream)."""
    target = config.core.log_file
    if target == "-":
        if stream is None:
            return None
        out = stream
    else:
        path = config.base_dir / os.path.expanduser(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("a", encoding="utf-8")
    globalLogPublisher.addObserver(make_output_observer(config.core.log_format, out))
    return out
