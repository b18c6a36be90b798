"""The device registry: the one place devices and variables live, whatever their world.

Adapters register devices with a :class:`DeviceOwner` and report values; anyone reads
values, subscribes to changes (``VariableChanged`` events on the bus) and requests writes,
which go to the owning adapter. Peer ids are persisted against ``(source, key)`` and never
reused; the last reported values are persisted too (batched, see ``flush``).

The registry is the one owner of device state: a variable's confirmed value, the write
pending on it (whichever world made it: ``put_values``, or an owner's own
``hold_pending``) and the waiters of ``confirm=True``. Adapters keep only what is on its
way to their wire. System variables (:mod:`hadaemon.registry.sysvars`) and the persisting
of last known values (:mod:`hadaemon.registry.state`) live in modules of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.aio import as_deferred
from hadaemon.bus import (
    Address,
    Bus,
    DeviceChanged,
    Event,
    Registration,
    Subscription,
    VariableChanged,
    segment,
)
from hadaemon.bus.events import variable_topic
from hadaemon.logs import get_logger
from hadaemon.registry.errors import (
    ConfirmationTimeout,
    DuplicateDevice,
    InvalidValue,
    ReadOnly,
    UnknownDevice,
)
from hadaemon.registry.model import (
    SYSTEM_PEER_ID,
    ChannelSpec,
    Device,
    DeviceOwner,
    Variable,
)
from hadaemon.registry.state import KeyValueStore, LastKnownValues
from hadaemon.registry.sysvars import SYSTEM_SOURCE, SystemVariables
from hadaemon.sentinels import UNKNOWN
from hadaemon.values import same

__all__ = ["SYSTEM_SOURCE", "KeyValueStore", "Registry"]  # the first two re-exported

_PEER_KEY = "registry/peer/"
_NEXT_PEER = "registry/next-peer-id"


class Registry:
    """Reactor thread only, like the bus it publishes on."""

    def __init__(
        self,
        reactor: IReactorTime,
        bus: Bus,
        store: KeyValueStore,
        *,
        log: Logger | None = None,
        state_flush_interval: float = 1.0,
        confirm_timeout: float = 10.0,
        stale_window: float = 1.0,
    ) -> None:
        self._reactor = reactor
        self._bus = bus
        self._store = store
        self._log = log or get_logger("hadaemon.registry")
        self._devices: dict[int, Device] = {}
        self._by_key: dict[tuple[str, str], int] = {}
        self._endpoints: dict[int, Registration] = {}
        self._sysvars = SystemVariables(reactor, bus, store)
        self._state = LastKnownValues(reactor, store, self._log, state_flush_interval)
        self.confirm_timeout = confirm_timeout
        self.stale_window = stale_window
        self._waiters: dict[tuple[int, int, str], list[tuple[Any, Deferred[None]]]] = {}
        self._system_endpoint: Registration | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Load system variables and accept ``device:0`` messages; store must be open."""
        self._sysvars.load()
        if self._system_endpoint is None:
            self._system_endpoint = self._bus.register(
                f"device:{SYSTEM_PEER_ID}", self._on_system_message, name="system variables"
            )

    def stop(self) -> None:
        """Write pending last-known values (the store flushes them to disk after)."""
        self.flush()
        if self._system_endpoint is not None:
            self._system_endpoint.unregister()
            self._system_endpoint = None

    # -- devices ---------------------------------------------------------------------

    def peer_id_for(self, source: str, key: str) -> int:
        """The stable peer id of ``(source, key)``, allocated on first use, never reused."""
        store_key = f"{_PEER_KEY}{segment(source)}/{key}"
        existing = self._store.get(store_key)
        if isinstance(existing, int):
            return existing
        peer_id = self._store.get(_NEXT_PEER, 1)
        self._store.put_many({_NEXT_PEER: peer_id + 1, store_key: peer_id})
        return int(peer_id)

    def add_device(
        self,
        source: str,
        key: str,
        name: str,
        channels: Sequence[ChannelSpec],
        owner: DeviceOwner | None,
        *,
        type_name: str = "",
        info: Mapping[str, Any] | None = None,
    ) -> Device:
        """Register (or re-describe) the device ``key`` of adapter ``source``."""
        peer_id = self.peer_id_for(source, key)
        old = self._devices.get(peer_id)
        if old is not None and old.owner is not owner and old.owner is not None:
            raise DuplicateDevice(f"{source}:{key} is already registered by another owner")
        last_known = self._state.load(peer_id)
        device = Device(
            peer_id, source, key, name, type_name, channels, owner, info or {}, last_known
        )
        for index, channel in device.channels.items():
            for var_name, var in channel.variables.items():
                var.topic = variable_topic(source, peer_id, index, var_name)
        if old is not None:
            # Re-described (e.g. bridge/devices republished): keep what was reported.
            for index, channel in device.channels.items():
                for var_name, var in channel.variables.items():
                    try:
                        prev = old.variable(index, var_name)
                    except Exception:
                        continue
                    var.value, var.timestamp = prev.value, prev.timestamp
                    var.pending, var.pending_since, var.pending_until = (
                        prev.pending, prev.pending_since, prev.pending_until)
        self._devices[peer_id] = device
        self._by_key[(source, key)] = peer_id
        if peer_id not in self._endpoints:
            self._endpoints[peer_id] = self._bus.register(
                f"device:{peer_id}", self._on_device_message, name=f"device {peer_id} ({name})"
            )
        if old is None:
            change = DeviceChanged.ADDED
        elif old.name != name:
            change = DeviceChanged.RENAMED
        else:
            change = DeviceChanged.UPDATED
        self._bus.publish(DeviceChanged(source, peer_id, change, name))
        return device

    def rename_device(self, peer_id: int, name: str) -> None:
        device = self.device(peer_id)
        if device.name != name:
            device.name = name
            self._bus.publish(DeviceChanged(device.source, peer_id, DeviceChanged.RENAMED, name))

    def remove_device(self, peer_id: int) -> None:
        """Forget a device for now; its peer id stays reserved for its key."""
        device = self._devices.pop(peer_id, None)
        if device is None:
            raise UnknownDevice(peer_id)
        self._by_key.pop((device.source, device.key), None)
        registration = self._endpoints.pop(peer_id, None)
        if registration is not None:
            registration.unregister()
        self._bus.publish(DeviceChanged(device.source, peer_id, DeviceChanged.REMOVED, device.name))

    def device(self, peer_id: int) -> Device:
        try:
            return self._devices[peer_id]
        except (KeyError, TypeError):
            raise UnknownDevice(peer_id) from None

    def find(self, source: str, key: str) -> Device | None:
        peer_id = self._by_key.get((source, key))
        return None if peer_id is None else self._devices[peer_id]

    def devices(self, source: str | None = None) -> list[Device]:
        """Registered devices by peer id, optionally of one adapter."""
        return [
            d for _, d in sorted(self._devices.items()) if source is None or d.source == source
        ]

    # -- values ----------------------------------------------------------------------

    def report(
        self,
        peer_id: int,
        channel: int,
        name: str,
        value: Any,
        *,
        timestamp: float | None = None,
    ) -> bool:
        """The owning adapter reports a value; returns whether it changed (an event is
        due: it is published when someone subscribed to it; event variables always)."""
        return self.report_to(self.device(peer_id).variable(channel, name), value,
                              timestamp=timestamp)

    def report_to(self, var: Variable, value: Any, *, timestamp: float | None = None) -> bool:
        """:meth:`report` to a variable got from :meth:`variable` (of a registered device:
        UnknownDevice otherwise), for adapters that report many values (no lookup by
        name per value)."""
        device = var.device
        if device is None or self._devices.get(device.peer_id) is not device:
            raise UnknownDevice(device.peer_id if device is not None else var.name)
        now = self._reactor.seconds() if timestamp is None else timestamp
        previous = var.value
        var.timestamp = now
        pending = var.pending
        if pending is not UNKNOWN and (
            same(pending, value) or now >= var.pending_since + self.stale_window
        ):
            # Confirmed, or the device moved on: a report of another value sent before
            # the write reached it (in flight) comes within stale_window; a later one is
            # the device's own word (a dimmer turned, a value clamped).
            var.pending = UNKNOWN
        spec = var.spec
        if self._waiters:
            self._resolve_waiters(device.peer_id, var.channel, spec.name, value)
        if not spec.is_event:
            if same(previous, value):
                return False
            self._state.mark_dirty((device.peer_id, var.channel, spec.name), value)
        var.value = value
        # No event is built when nobody listens (most variables of a house). With the
        # topic kept per variable and report_to: benchmarks/zigbee_path.py ingest (six
        # values a message, one subscriber), least CPU per message, 3 runs taking turns
        # with main: 34-35 us (one outlier 67) against 51-57 us (docs/mqtt.md).
        if self._bus.has_subscribers(var.topic):
            self._bus.publish(
                VariableChanged(device.source, device.peer_id, var.channel, spec.name, value,
                                now, previous, spec.is_event),
                topic=var.topic,
            )
        return True

    def report_many(self, peer_id: int, channel: int, values: Mapping[str, Any]) -> int:
        """Report several values at once; returns how many changed."""
        return sum(self.report(peer_id, channel, n, v) for n, v in values.items())

    def get_value(self, peer_id: int, channel: int, name: str) -> Any:
        """The current value (a write the owner accepted counts until the device confirms
        or contradicts it for ``confirm_timeout``), or UNKNOWN if none is known yet."""
        if peer_id == SYSTEM_PEER_ID:
            return self.get_system_variable(name)
        return self.current(self.device(peer_id).variable(channel, name))

    def current(self, var: Variable) -> Any:
        """``var``'s value as reads see it: see :meth:`Variable.current`."""
        return var.current(self._reactor.seconds())

    def variable(self, peer_id: int, channel: int, name: str) -> Variable:
        return self.device(peer_id).variable(channel, name)

    def set_value(
        self,
        peer_id: int,
        channel: int,
        name: str,
        value: Any,
        *,
        confirm: bool = False,
        timeout: float | None = None,
    ) -> Deferred[None]:
        """Write one variable; see :meth:`put_values`."""
        return self.put_values(peer_id, channel, {name: value}, confirm=confirm, timeout=timeout)

    def put_values(
        self,
        peer_id: int,
        channel: int,
        values: Mapping[str, Any],
        *,
        confirm: bool = False,
        timeout: float | None = None,
    ) -> Deferred[None]:
        """Write variables of one channel through the owning adapter.

        Fires when the adapter accepted the write, or with ``confirm`` once the device
        reported every written value (:class:`ConfirmationTimeout` after ``timeout``).
        Checks (unknown names, read-only, types, ranges) fail the Deferred at once and
        nothing is written.
        """
        try:
            if peer_id == SYSTEM_PEER_ID:
                for name, value in values.items():
                    self.set_system_variable(name, value)
                return succeed(None)
            device = self.device(peer_id)
            checked: dict[str, Any] = {}
            for name, value in values.items():
                spec = device.variable(channel, name).spec
                if not spec.writable:
                    raise ReadOnly(peer_id, channel, name)
                checked[name] = spec.check(value)
            if device.owner is None:
                raise ReadOnly(peer_id, channel, next(iter(values), ""))
        except Exception:
            return fail(Failure())
        if not checked:
            return succeed(None)
        waits = (
            [self._wait_for(peer_id, channel, n, v) for n, v in checked.items()] if confirm else []
        )
        try:
            # The owner first: it may tell its own listeners what reads saw before (the
            # zigbee adapter's automations), and may confirm at once (the waits are set).
            accepted = as_deferred(device.owner.write_values(device, channel, checked))
        except Exception:
            for waiter in waits:
                waiter.cancel()
            return fail(Failure())
        written = self._hold_pending(device, channel, checked)

        def refused(f: Failure) -> Failure:
            self._drop_pending(written)
            return f

        accepted.addErrback(refused)
        if not confirm:
            return accepted.addCallback(lambda _: None)
        limit = self.confirm_timeout if timeout is None else timeout

        def confirmed(_: object) -> Deferred[None]:
            outcome: Deferred[None] = Deferred()

            def expire() -> None:
                outcome.errback(
                    ConfirmationTimeout(
                        f"device {peer_id} channel {channel} did not confirm "
                        f"{sorted(checked)} within {limit}s"
                    )
                )
                for waiter in waits:
                    waiter.cancel()

            timer = self._reactor.callLater(limit, expire)

            def all_reported(_: object) -> None:
                if not outcome.called:
                    timer.cancel()
                    outcome.callback(None)

            gatherResults(waits, consumeErrors=True).addCallbacks(all_reported, lambda _: None)
            return outcome

        def rejected(f: Failure) -> Failure:
            for waiter in waits:
                waiter.cancel()
            return f

        return accepted.addCallbacks(confirmed, rejected)

    def _hold_pending(
        self, device: Device, channel: int, values: Mapping[str, Any]
    ) -> list[tuple[Variable, Any]]:
        """Reads see ``values`` from now on (a back-to-back ``+=`` composes on them)."""
        held = []
        for name, value in values.items():
            var = device.variable(channel, name)
            if self.hold_pending(var, value):
                held.append((var, value))
        return held

    def _drop_pending(self, held: list[tuple[Variable, Any]]) -> None:
        for var, value in held:
            self.drop_pending(var, value)

    def hold_pending(self, var: Variable, value: Any) -> bool:
        """A write the owner sends on its own (a zigbee automation's set) is pending like
        one made through :meth:`put_values`: reads see ``value`` until the device
        confirms it, contradicts it after ``stale_window``, or ``confirm_timeout`` passes.
        Event and write-only variables hold nothing (no report would ever end it), nor
        does a write of the value the device confirmed (it ends a pending one; an owner
        may have confirmed already). Returns whether ``value`` is held."""
        spec = var.spec
        if spec.is_event or not spec.readable:
            return False
        if same(var.value, value):
            var.pending = UNKNOWN
            return False
        now = self._reactor.seconds()
        var.pending, var.pending_since, var.pending_until = value, now, now + self.confirm_timeout
        return True

    @staticmethod
    def drop_pending(var: Variable, value: Any) -> None:
        """The owner could not send the write of ``value`` (refused, its wire lost): reads
        fall back, unless a later write took over."""
        if var.pending is value:
            var.pending = UNKNOWN

    @staticmethod
    def forget(var: Variable) -> None:
        """The device has no value for ``var`` now (zigbee2mqtt's ``null``: an effect that
        ended): reads see UNKNOWN until it reports one, and no write is pending. Nothing
        is published (there is no value to carry) nor persisted."""
        var.value = UNKNOWN
        var.pending = UNKNOWN

    def query(
        self, peer_id: int, channel: int, names: Sequence[str] | None = None
    ) -> Deferred[None]:
        """Ask the device to report values again (queryable ones when names is None)."""
        try:
            device = self.device(peer_id)
            chan = device.channel(channel)
            wanted = list(names) if names is not None else [
                n for n, v in chan.variables.items() if v.spec.queryable
            ]
            for n in wanted:
                device.variable(channel, n)
            if device.owner is None or not wanted:
                return succeed(None)
            return as_deferred(device.owner.query_values(device, channel, wanted)).addCallback(
                lambda _: None
            )
        except Exception:
            return fail(Failure())

    def _wait_for(self, peer_id: int, channel: int, name: str, value: Any) -> Deferred[None]:
        key = (peer_id, channel, name)
        waiters = self._waiters.setdefault(key, [])

        def cancelled(d: Deferred[None]) -> None:
            entries = self._waiters.get(key, [])
            self._waiters[key] = [(v, w) for v, w in entries if w is not d]
            if not self._waiters[key]:
                del self._waiters[key]

        d: Deferred[None] = Deferred(cancelled)
        waiters.append((value, d))
        return d

    def _resolve_waiters(self, peer_id: int, channel: int, name: str, value: Any) -> None:
        key = (peer_id, channel, name)
        waiters = self._waiters.get(key)
        if not waiters:
            return
        keep = []
        for expected, d in waiters:
            if same(expected, value):
                d.callback(None)
            else:
                keep.append((expected, d))
        if keep:
            self._waiters[key] = keep
        else:
            del self._waiters[key]

    # -- system variables (peer 0, channel -1): hadaemon.registry.sysvars ----------

    def get_system_variable(self, name: str) -> Any:
        return self._sysvars.get(name)

    def set_system_variable(self, name: str, value: Any) -> None:
        """Set (and persist) a system variable; publishes a change from source "system"."""
        self._sysvars.set(name, value)

    def delete_system_variable(self, name: str) -> None:
        self._sysvars.delete(name)

    def system_variables(self) -> dict[str, Any]:
        return dict(self._sysvars.load())

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(
        self,
        callback: Callable[[VariableChanged], object],
        *,
        source: str | None = None,
        peer_id: int | None = None,
        channel: int | None = None,
        name: str | None = None,
        subscriber: str | None = None,
    ) -> Subscription:
        """Variable changes, filtered by any of source, peer id, channel and name."""
        parts = [
            "variable",
            "+" if source is None else segment(source),
            "+" if peer_id is None else str(peer_id),
            "+" if channel is None else str(channel),
            "+" if name is None else segment(name),
        ]

        def deliver(event: Event) -> object:
            assert isinstance(event, VariableChanged)
            return callback(event)

        return self._bus.subscribe(
            "/".join(parts),
            deliver,
            name=subscriber or getattr(callback, "__qualname__", repr(callback)),
            event_type=VariableChanged,
        )

    # -- bus endpoints -----------------------------------------------------------------

    def _on_device_message(self, address: Address, message: Any) -> Deferred[None]:
        peer_id = int(address.id)
        if not isinstance(message, Mapping):
            raise InvalidValue(
                f"a message to {address} is a table of values to set, got {type(message).__name__}"
            )
        device = self.device(peer_id)
        if address.path:
            try:
                channel = int(address.path)
            except ValueError:
                raise InvalidValue(f"{address}: the path must be a channel number") from None
            return self.put_values(peer_id, channel, message)
        by_channel: dict[int, dict[str, Any]] = {}
        for name, value in message.items():
            by_channel.setdefault(device.find_channel_of(name), {})[name] = value
        writes = [self.put_values(peer_id, ch, vals) for ch, vals in by_channel.items()]
        if len(writes) == 1:
            return writes[0]
        return DeferredList(writes, fireOnOneErrback=True, consumeErrors=True).addCallbacks(
            lambda _: None, lambda f: f.value.subFailure
        )

    def _on_system_message(self, address: Address, message: Any) -> None:
        if not isinstance(message, Mapping):
            raise InvalidValue(f"a message to {address} is a table of system variables")
        for name, value in message.items():
            self.set_system_variable(name, value)

    # -- persistence of last known values: hadaemon.registry.state ------------------

    @property
    def state_flush_interval(self) -> float:
        """Seconds between a reported change and its batched write to the store."""
        return self._state.flush_interval

    @state_flush_interval.setter
    def state_flush_interval(self, seconds: float) -> None:
        self._state.flush_interval = seconds

    def flush(self) -> None:
        """Persist the last known values reported since the previous flush (one write)."""
        self._state.flush()
