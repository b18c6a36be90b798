"""The order plugins start and stop in, from what they declare they need.

A plugin class declares ``requires`` (plugins it cannot work without: they must be
enabled, and start before it) and ``wants`` (plugins it uses when they are enabled: they
start before it if so). A plugin whose needs depend on its config section overrides the
classmethod ``requirements(section)``. The daemon starts plugins in an order that puts
every plugin after what it needs, keeping the config order wherever nothing is declared,
and stops them in reverse. A plugin whose requirement is not enabled, that sits in a cycle,
or that requires one of those, does not start: :func:`start_order` says why, naming the
plugin and what it requires.

Plain functions over names; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hadaemon.usercode import contain


@dataclass(frozen=True)
class Needs:
    """What one plugin needs: ``requires`` (enabled, started first) and ``wants``
    (started first when enabled)."""

    requires: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()


@dataclass(frozen=True)
class StartOrder:
    """``order``: the plugins that may start, in start order (stop in reverse);
    ``refused``: the others, each with the reason, in config order; ``needs``: what
    each plugin declared (nothing for those absent)."""

    order: list[str]
    refused: dict[str, str]
    needs: dict[str, Needs]


def needs_of(name: str, factory: Any, section: Mapping[str, Any]) -> Needs:
    """What the plugin ``name`` made by ``factory`` needs with its config ``section``.

    Raises ValueError naming the plugin when the declaration is not a tuple of names (a
    bare string, ``requires = ("mqtt")``, is the usual slip) or ``requirements`` fails.
    """
    method = getattr(factory, "requirements", None)
    if callable(method):
        try:
            requires: object = method(section)
        except BaseException as exc:  # sys.exit() too; a real Ctrl+C goes on up
            error = contain(exc)
            raise ValueError(
                f"plugin {name!r}: requirements() failed: {type(error).__name__}: {error}"
            ) from None
        what = "requirements() result"
    else:
        requires, what = getattr(factory, "requires", ()), "requires"
    return Needs(_names(name, what, requires), _names(name, "wants", getattr(factory, "wants", ())))


def _names(plugin: str, what: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"plugin {plugin!r}: {what} must be a tuple of plugin names, "
                         f"got {value!r}")
    names = tuple(value)
    for item in names:
        if not isinstance(item, str) or not item:
            raise ValueError(f"plugin {plugin!r}: {what} must be a tuple of plugin names, "
                             f"got {value!r}")
    return names


def plan(enabled: Sequence[str], factories: Mapping[str, Any],
         section: Callable[[str], Mapping[str, Any]]) -> StartOrder:
    """:func:`start_order` with each plugin's needs read from its factory (``factories``
    lacks plugins the catalog does not know); ``section(name)`` is its config section.
    A plugin whose declaration is invalid is refused with the reason."""
    needs: dict[str, Needs] = {}
    invalid: dict[str, str] = {}
    for name in enabled:
        if name in factories:
            try:
                needs[name] = needs_of(name, factories[name], section(name))
            except ValueError as exc:
                invalid[name] = str(exc)
    return start_order(enabled, needs, invalid)


def start_order(enabled: Sequence[str], needs: Mapping[str, Needs],
                invalid: Mapping[str, str] | None = None) -> StartOrder:
    """Order ``enabled`` (the config's order) so each plugin follows what it needs.

    Stable: among plugins free to start, the one listed first goes first, so a config
    that already lists dependencies first keeps its order. ``needs`` lacks plugins that
    declare nothing (and those the catalog does not know); ``invalid`` holds plugins
    refused already, with the reason.
    """
    names = list(dict.fromkeys(enabled))
    listed = set(names)
    declared = {name: needs.get(name, Needs()) for name in names}
    refused: dict[str, str] = dict(invalid or {})
    for name in names:
        if name in refused:
            continue
        missing = [r for r in declared[name].requires if r not in listed]
        if missing:
            refused[name] = (f"plugin {name!r} requires {_listing(missing)}, which "
                             f"{'is' if len(missing) == 1 else 'are'} not enabled in "
                             "[daemon].plugins")
    _refuse_dependents(names, declared, refused)
    order: list[str] = []
    placed: set[str] = set()
    waiting = [name for name in names if name not in refused]
    while waiting:
        ready = next((name for name in waiting
                      if all(d in placed or d not in listed or d in refused
                             for d in _before(declared[name]))), None)
        if ready is None:
            _refuse_cycle(waiting, declared, refused)
            _refuse_dependents(names, declared, refused)
            waiting = [name for name in waiting if name not in refused]
            continue
        order.append(ready)
        placed.add(ready)
        waiting.remove(ready)
    return StartOrder(order, {name: refused[name] for name in names if name in refused},
                      {name: declared[name] for name in names if declared[name] != Needs()})


def _before(needs: Needs) -> tuple[str, ...]:
    return needs.requires + needs.wants


def _listing(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _refuse_dependents(names: Sequence[str], declared: Mapping[str, Needs],
                       refused: dict[str, str]) -> None:
    # A plugin that requires a refused one cannot start either (wants only reorder).
    changed = True
    while changed:
        changed = False
        for name in names:
            if name in refused:
                continue
            blocked = next((r for r in declared[name].requires if r in refused), None)
            if blocked is not None:
                refused[name] = (f"plugin {name!r} requires {blocked!r}, which cannot "
                                 f"start ({refused[blocked]})")
                changed = True


def _refuse_cycle(waiting: Sequence[str], declared: Mapping[str, Needs],
                  refused: dict[str, str]) -> None:
    # Every waiting plugin waits for another waiting one: follow those waits from the
    # first until a plugin comes round again; that loop is a cycle.
    pending = set(waiting)
    path = [waiting[0]]
    while True:
        step = next(d for d in _before(declared[path[-1]]) if d in pending)
        if step in path:
            loop = path[path.index(step):]
            break
        path.append(step)
    first = min(range(len(loop)), key=lambda i: waiting.index(loop[i]))  # as listed
    cycle = [*loop[first:], *loop[:first]]
    text = " -> ".join([*cycle, cycle[0]])
    for name in cycle:
        refused[name] = (f"plugin {name!r} is in a cycle of requirements ({text}): "
                         "none of them can start first")


__all__ = ["Needs", "StartOrder", "needs_of", "plan", "start_order"]
