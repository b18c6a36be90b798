"""The network's readiness: the broker connection's events, waiting for
``bridge/devices`` after a (re)connect (or ``devices_timeout``), telling observers, and
the optional throttled query of mains-powered devices that follows; it waits while the
bridge is offline and asks again after a bridge restart. Reactor thread only.
"""

from __future__ import annotations

from hadaemon.bus import Event, Lifecycle
from hadaemon.zigbee.live import LiveDevice, LiveTarget
from hadaemon.zigbee.network_base import NetworkBase


class Readiness(NetworkBase):
    """Connection events, readiness and the throttled query (a half of ``Network``)."""

    # -- connection events ------------------------------------------------------------------

    def _on_lifecycle(self, event: Event) -> None:
        assert isinstance(event, Lifecycle)
        if event.state in (Lifecycle.CONNECTED, Lifecycle.RECONNECTED):
            self._connected()
        elif event.state == Lifecycle.DISCONNECTED:
            self.collator.release()  # a read the link dropped in never ran its hook
            self.ready = False
            self._awaiting_devices = False
            for call in (self._ready_call, self._query_call):
                if call is not None and call.active():
                    call.cancel()
            self._query_queue.clear()
            for observer in list(self._observers):
                observer.network_disconnected()

    def _connected(self) -> None:
        # The retained bridge/devices follows our (re)subscription: wait for it, a bit.
        self._awaiting_devices = True
        if self._ready_call is not None and self._ready_call.active():
            self._ready_call.cancel()
        self._ready_call = self.reactor.callLater(self.settings.devices_timeout,
                                                  self._devices_timed_out)

    def _devices_timed_out(self) -> None:
        self._ready_call = None
        if self._awaiting_devices:
            self.log.warn(
                "{source}: no {base}/bridge/devices within {t:g} s after connecting; is "
                "zigbee2mqtt running with this base topic? Going on with what is known",
                source=self.source, base=self.base_topic, t=self.settings.devices_timeout,
            )
            self._become_ready()

    def _become_ready(self) -> None:
        self._awaiting_devices = False
        if self._ready_call is not None and self._ready_call.active():
            self._ready_call.cancel()
        self._ready_call = None
        self._connects += 1
        first = self._connects == 1
        self.ready = True
        for observer in list(self._observers):
            observer.network_ready(first)
        if (first and self.settings.initial_query) or (
            not first and self.settings.requery_on_reconnect
        ):
            self._query_wanted = True
        if self._query_wanted:
            self._start_queries()
    # -- the initial (throttled) query ---------------------------------------------------

    def _start_queries(self) -> None:
        """Ask every device that can answer, once (a run in progress starts over)."""
        if self.bridge_online is False:
            return  # nobody would answer: asked when the bridge comes online
        self._query_wanted = False
        self._query_queue = [
            d for d in sorted(self.devices.values(), key=lambda d: d.name)
            if self.can_answer(d) and self.queryable(d)
        ]
        if self._query_queue and (self._query_call is None or not self._query_call.active()):
            self._query_call = self.reactor.callLater(0, self._query_next)

    def can_answer(self, device: LiveDevice) -> bool:
        """Whether asking makes sense: not asleep (battery), not disabled, not offline."""
        info = device.info
        if info is not None and (
            info.disabled or (info.battery_powered and not self.settings.query_battery_devices)
        ):
            return False
        return device.available is not False

    @staticmethod
    def queryable(device: LiveTarget) -> list[str]:
        """Properties worth a ``/get``: queryable, readable, not events."""
        return [p for p, f in device.features.items()
                if f.queryable and f.readable and not f.is_event]

    def _query_next(self) -> None:
        self._query_call = None
        while self._query_queue:
            device = self._query_queue.pop(0)
            if device.key in self.devices and self.can_answer(device):
                for prop in self.queryable(device):
                    self.collator.query(device, prop)
                break
        if self._query_queue:
            self._query_call = self.reactor.callLater(self.settings.query_interval,
                                                      self._query_next)

    def _bridge_queries(self, online: bool, restarted: bool) -> None:
        """Queries follow the bridge: held while it is offline, asked again after a
        restart (its devices may have changed while it was down)."""
        if not online:
            if self._query_queue or (self._query_call is not None and self._query_call.active()):
                self._query_wanted = True  # the rest would be asked into the void
            if self._query_call is not None and self._query_call.active():
                self._query_call.cancel()
            self._query_call = None
            self._query_queue.clear()
        elif self.ready and (self._query_wanted
                             or (restarted and self.settings.requery_on_reconnect)):
            self._start_queries()


__all__ = ["Readiness"]
