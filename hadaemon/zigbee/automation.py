"""One automation file running in the adapter: its modules, its devices, its loop.

hadaemon imports the file (see :mod:`hadaemon.zigbee.loader`), finds its
``DevicesClient`` (the ``AvailableDevices`` object, as pyziggy does), attaches it to the
network, and from then on calls its listeners and timers on the reactor thread. Every call
into user code is isolated: an exception (``sys.exit()`` included) is logged with the
automation's name and published as an ``ErrorEvent``, and the daemon goes on.

Hot reload (docs/reload.md) imports the new version first (:meth:`import_code`), so code
that does not load never replaces the running version; once it did, the old runtime
stops (its timers and listeners with it) and the new one attaches, with the same
generated device classes (``generated``).
"""

from __future__ import annotations

import inspect
import pathlib
import types
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.aio import as_deferred
from hadaemon.bus import Bus, ErrorEvent, Level
from hadaemon.usercode import contain, failure_of
from hadaemon.watchdog import Watchdog
from hadaemon.zigbee.compat import message_loop as static_loop
from hadaemon.zigbee.devices import Device, DevicesClient, device_attribute_names
from hadaemon.zigbee.live import LiveTarget
from hadaemon.zigbee.loader import AutomationImporter, package_module
from hadaemon.zigbee.network import Network

GENERATED_PACKAGE = "pyziggy_autogenerate"
GENERATED_MODULE = "available_devices"


class AutomationRuntime(static_loop.LoopHost):
    """One automation: loaded, attached, stopped. Reactor thread only, except ``post``."""

    def __init__(
        self,
        path: pathlib.Path,
        network: Network,
        *,
        reactor: Any,
        bus: Bus,
        log: Logger,
        watchdog: Watchdog | None = None,
        on_exit: Callable[[int], object] | None = None,
        instance: str = "",
        generated_dir: pathlib.Path | None = None,
        generated: types.ModuleType | None = None,
    ) -> None:
        self.path = path
        self.name = path.stem
        self.component = f"automation {path.name}"
        self.network = network
        self.reactor = reactor
        self.bus = bus
        self.log = log
        self.watchdog = watchdog
        self.on_exit = on_exit
        self.generated_dir = generated_dir or path.parent
        self.stopped = False
        self.loaded = False
        self.clients: list[DevicesClient] = []
        self.module: types.ModuleType | None = None
        self._timers: list[static_loop.MessageLoopTimer] = []
        self._views: list[Device] = []
        self._connected_once = False
        self._remove_observer: Callable[[], None] | None = None
        self.generated = generated if generated is not None else self._generated_module()
        self.importer = AutomationImporter(path, self._compat_modules(), instance)
        self.errors = 0

    # -- loading -----------------------------------------------------------------------

    def load(self) -> bool:
        """Import the automation and attach its devices; False (logged) if it failed."""
        try:
            self.import_code()
        except BaseException as exc:
            self._failed(failure_of(exc), f"{self.path} failed to load")
            return False
        self.attach()
        return True

    def import_code(self) -> None:
        """Execute the automation's modules; raises (as a UserCodeEscape for what is no
        Exception) what their code raises, leaving nothing running."""
        try:
            with self._component():
                self.module = self.importer.load()
        except BaseException as exc:
            self.stop()  # timers its module-level code started
            raise contain(exc) from None

    def files(self) -> list[pathlib.Path]:
        """The automation's file and the sibling modules it imported (not generated ones)."""
        found = [self.path.resolve()]
        for module in list(self.importer.modules.values()):
            file = getattr(module, "__file__", None)
            if file and pathlib.Path(file).resolve() not in found:
                found.append(pathlib.Path(file).resolve())
        return found

    def attach(self) -> None:
        """Attach the imported automation's devices and listeners to the network."""
        assert self.module is not None
        self.clients = [v for v in vars(self.module).values() if isinstance(v, DevicesClient)]
        if not self.clients:
            self.log.warn("{component}: defines no DevicesClient (AvailableDevices()) at module "
                          "level, so it gets no devices", component=self.component)
        elif len(self.clients) > 1:
            self.log.warn("{component}: {n} DevicesClient objects; pyziggy expects one",
                          component=self.component, n=len(self.clients))
        for client in self.clients:
            client._attach(self)
        self._remove_observer = self.network.add_observer(self)
        self.loaded = True
        if self.network.ready:
            self.reactor.callLater(0, self.network_ready, True)
        self.log.info("{component}: running", component=self.component)

    def _compat_modules(self) -> dict[str, types.ModuleType]:
        from hadaemon.zigbee import compat
        from hadaemon.zigbee.compat import broadcasters, devices_client, parameters

        host = self

        def bound(cls: type) -> type:
            return type(cls.__name__, (cls,), {"_host": host, "__module__": cls.__module__,
                                               "__qualname__": cls.__qualname__})

        loop_classes = {
            name: bound(getattr(static_loop, name))
            for name in ("MessageLoop", "MessageLoopTimer", "AsyncUpdater", "AsyncCallback")
        }
        loop = types.ModuleType("pyziggy.message_loop", static_loop.__doc__)
        loop.__dict__.update(loop_classes)
        loop.message_loop = loop_classes["MessageLoop"]()  # type: ignore[attr-defined]
        loop.LoopHost = static_loop.LoopHost  # type: ignore[attr-defined]
        modules: dict[str, types.ModuleType] = {
            "pyziggy.message_loop": loop,
            "pyziggy.parameters": parameters,
            "pyziggy.devices_client": devices_client,
            "pyziggy.broadcasters": broadcasters,
        }
        modules["pyziggy"] = package_module(
            "pyziggy", run=compat.run, pyziggy=compat.pyziggy, EmkyootConfig=compat.EmkyootConfig,
            PyziggyConfig=compat.PyziggyConfig,
            **{name.partition(".")[2]: module for name, module in modules.items()},
        )
        generated = self.generated
        modules[f"{GENERATED_PACKAGE}.{GENERATED_MODULE}"] = generated
        modules[GENERATED_PACKAGE] = package_module(GENERATED_PACKAGE,
                                                    **{GENERATED_MODULE: generated})
        return modules

    def _generated_module(self) -> types.ModuleType:
        """The generated module next to the automation if there is one, else dynamic."""
        path = self.generated_dir / GENERATED_PACKAGE / f"{GENERATED_MODULE}.py"
        if not path.is_file():
            from hadaemon.zigbee.compat import available_devices

            return available_devices
        module = types.ModuleType(f"{GENERATED_PACKAGE}.{GENERATED_MODULE}")
        module.__file__ = str(path)
        exec(compile(path.read_bytes(), str(path), "exec"), module.__dict__)
        return module

    # -- stopping ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop timers and listeners; the automation's objects stay, inert."""
        if self.stopped:
            return
        self.stopped = True
        for timer in self._timers:
            timer.stop()
        self._timers.clear()
        if self._remove_observer is not None:
            self._remove_observer()
        for client in self.clients:
            views = client.get_devices()
            self.network.detach_views(views)
        self.network.detach_views(self._views)
        self._views.clear()
        self.importer.unload()
        if self.loaded:
            self.log.info("{component}: stopped", component=self.component)

    # -- calling user code ----------------------------------------------------------------

    def caller(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call user code, isolated: errors are logged and published, never raised."""
        if self.stopped:
            return
        try:
            if self.watchdog is not None:
                result = self.watchdog.track(self.component, callback, *args)
            else:
                result = callback(*args)
        except BaseException as exc:
            failure = failure_of(exc)
            self._failed(failure, f"called sys.exit({exc.code!r}); ignored (use "
                         "message_loop.stop() to stop an automation)"
                         if isinstance(exc, SystemExit) else f"{_name(callback)} failed")
            return
        if result is not None and (isinstance(result, Deferred) or inspect.isawaitable(result)):
            as_deferred(result, name=self.component).addErrback(
                self._failed, f"{_name(callback)} failed"
            )

    def _failed(self, failure: Failure, what: str) -> None:
        self.errors += 1
        self.log.failure("{component}: {what}", failure=failure, component=self.component,
                         what=what)
        self.bus.publish(ErrorEvent(f"automation:{self.name}", f"{what}: "
                                    f"{failure.getErrorMessage()}", Level.ERROR,
                                    {"traceback": failure.getTraceback(),
                                     "file": str(self.path)}))

    def _component(self) -> Any:
        if self.watchdog is not None:
            return self.watchdog.component(self.component)
        import contextlib

        return contextlib.nullcontext()

    # -- LoopHost (pyziggy's message loop) ----------------------------------------------------

    def post(self, callback: Callable[[], object]) -> None:
        """From any thread: run ``callback`` on the reactor thread."""
        self.reactor.callFromThread(self.caller, callback)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Any:
        return self.reactor.callLater(delay, self.caller, callback)

    def add_timer(self, timer: static_loop.MessageLoopTimer) -> None:
        if self.stopped:
            raise RuntimeError(f"{self.component} is stopped")
        if timer not in self._timers:
            self._timers.append(timer)

    def request_stop(self, return_code: int) -> None:
        self.log.info("{component}: message_loop.stop({code})", component=self.component,
                      code=return_code)
        if self.on_exit is not None:
            self.on_exit(return_code)
        else:
            self.reactor.callLater(0, self.stop)

    # -- ClientRuntime (what attached clients and devices use) --------------------------------

    @property
    def connected(self) -> bool:
        return bool(self.network.ready)

    def attach_view(self, view: Device) -> None:
        self._views.append(view)
        self.network.attach_view(view)

    def find(self, name: str) -> LiveTarget | None:
        return self.network.find(name)

    def names(self) -> list[tuple[str, str, bool]]:
        """(attribute, friendly name, is group) for every device and group, named as the
        generator would name them."""
        targets = {(t.name, t.key): t for t in self.network.targets()}
        names = device_attribute_names(list(targets))
        return [(attribute, key[0], targets[key].kind == "group")
                for key, attribute in sorted(names.items())]

    def request_unbound(self, kind: str, name: str, path: tuple[str, ...], wire: Any) -> None:
        self.network.collator.request(self.network.unbound(kind, name), path, wire, force=True)

    def query_unbound(self, kind: str, name: str, prop: str) -> None:
        self.network.collator.query(self.network.unbound(kind, name), prop)

    def bridge_request(self, path: str, payload: Mapping[str, Any],
                       timeout: float | None) -> Deferred[Any]:
        return self.network.requests.request(path, payload, timeout)

    # -- Observer (the network tells us) ------------------------------------------------------

    def network_ready(self, first: bool) -> None:
        if self.stopped:
            return
        reconnect = self._connected_once
        self._connected_once = True
        for client in self.clients:
            (client.on_reconnect if reconnect else client.on_connect)._call_listeners()

    def network_disconnected(self) -> None:
        for client in self.clients:
            client.on_disconnect._call_listeners()

    def bridge_event(self, payload: dict[str, Any]) -> None:
        for client in self.clients:
            client.on_bridge_event._call_listeners(payload)

    def devices_changed(self) -> None:
        for client in self.clients:
            client.on_devices_changed._call_listeners()


def _name(callback: Any) -> str:
    return str(getattr(callback, "__qualname__", None) or repr(callback))
