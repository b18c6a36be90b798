"""The main thread's implicit asyncio event loop, as Pythons before 3.12 gave it.

Node-BLUE's asyncio template calls ``asyncio.get_event_loop()`` in its main thread before
any loop is set. Up to 3.11 that created the loop and set it as the thread's current one;
3.12 and 3.13 still do but warn "There is no current event loop" (DeprecationWarning),
and 3.14 raises. The client restores the old behaviour: the first time the main thread
asks for its current loop and none was ever set, a new one is created and set, silently.

Only nodes that use asyncio pay for it: nothing of asyncio is imported here. If asyncio
is not imported yet, a meta path finder waits for its import (it finds nothing itself,
and costs every later import one call) and acts once asyncio's module has run.

Python 3.7+, standard library only.
"""

from __future__ import annotations

import sys
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any


def install() -> None:
    """Give the main thread its implicit loop, now or when asyncio is imported."""
    if sys.hexversion < 0x030C0000:  # before 3.12
        return  # the behaviour is still there
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        _patch(asyncio)
    else:
        sys.meta_path.insert(0, _AsyncioImport())


def _patch(asyncio: Any) -> None:
    """Wrap the default policy's ``get_event_loop`` (see the module docstring)."""
    events = asyncio.events
    # 3.14 deprecates the public getter (it would warn); the private one is its body.
    policy = getattr(events, "_get_event_loop_policy", events.get_event_loop_policy)()
    local = getattr(policy, "_local", None)
    original = policy.get_event_loop
    if local is None or getattr(original, "_homegear_implicit", False):
        return  # not the standard policy: leave it alone
    main = threading.main_thread()
    pending = [True]  # until the main thread first asks

    def get_event_loop() -> Any:
        if pending[0] and threading.current_thread() is main:
            pending[0] = False
            if local._loop is None and not getattr(local, "_set_called", False):
                policy.set_event_loop(policy.new_event_loop())
        return original()

    get_event_loop._homegear_implicit = True  # type: ignore[attr-defined]
    policy.get_event_loop = get_event_loop


class _AsyncioImport:
    """A meta path finder that finds nothing, but sees asyncio being imported."""

    def __init__(self) -> None:
        self.done = False

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "asyncio" or self.done:
            return None
        self.done = True  # it stays in sys.meta_path: removing it could race an import
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: ModuleSpec | None = find(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenPatch(spec.loader)  # type: ignore[assignment]
                return spec
        return None


class _ThenPatch:
    """Asyncio's own loader, then :func:`_patch`; it puts the real loader back."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
