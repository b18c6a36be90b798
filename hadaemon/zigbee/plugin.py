"""The ``zigbee2mqtt`` plugin: the network in the registry, and the automations.

It uses the shared broker connection of the ``mqtt`` plugin (``[zigbee2mqtt].mqtt`` names
it), through its public face :class:`hadaemon.mqtt.MqttClient`. It requires that plugin:
the daemon starts it first (wherever ``[daemon].plugins`` lists it) and refuses to start
``zigbee2mqtt`` without it, saying so.

Hot reload (docs/reload.md, docs/zigbee.md): the automations' files are watched; a
changed one gets a new runtime (the old one's listeners and timers are gone, the
generated device classes stay); automations added to or removed from the section are
started or stopped without touching the others or the network.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from twisted.internet.defer import Deferred

from hadaemon.config import Section
from hadaemon.mqtt import MqttClient
from hadaemon.plugin import Plugin, PluginContext
from hadaemon.reload import RestartNeeded, code_error, report_code_error
from hadaemon.zigbee.automation import AutomationRuntime
from hadaemon.zigbee.network import Network
from hadaemon.zigbee.settings import ZigbeeSettings

SCHEMA = ZigbeeSettings.schema()


class ZigbeeAdapter(Plugin):
    """zigbee2mqtt devices as registry devices, and pyziggy-style automations."""

    name = "zigbee2mqtt"
    description = "zigbee2mqtt devices and pyziggy-style automations"
    schema: ClassVar[Section] = SCHEMA
    stop_timeout: ClassVar[float | None] = 5.0
    requires: ClassVar[tuple[str, ...]] = ("mqtt",)

    @classmethod
    def requirements(cls, section: Mapping[str, Any]) -> tuple[str, ...]:
        """The connection plugin ``[zigbee2mqtt].mqtt`` names (``mqtt`` by default)."""
        return (str(section.get("mqtt") or cls.requires[0]),)

    def __init__(self, context: PluginContext, *,
                 on_exit: Callable[[int], object] | None = None) -> None:
        super().__init__(context)
        self.on_exit = on_exit
        self.network: Network | None = None
        self.automations: list[AutomationRuntime] = []
        self._generated: dict[pathlib.Path, str] = {}
        self._generations = 0  # runtimes made: each imports into a namespace of its own
        self._regenerate_observer: Callable[[], None] | None = None

    def start(self) -> None:
        settings = ZigbeeSettings.from_section(self.config)
        mqtt_name = settings.mqtt
        mqtt = self.context.plugin(mqtt_name)
        if mqtt is None:
            raise RuntimeError(
                f"zigbee2mqtt needs the {mqtt_name!r} plugin (the shared MQTT connection), "
                f"which is not running: enable it in [daemon].plugins and configure "
                f"[{mqtt_name}]"
            )
        if not isinstance(mqtt, MqttClient):
            raise RuntimeError(
                f"zigbee2mqtt needs the {mqtt_name!r} plugin to be an MQTT connection "
                f"(hadaemon.mqtt.MqttClient), got {type(mqtt).__name__}: set "
                "[zigbee2mqtt].mqtt to the name of the mqtt plugin"
            )
        self.network = Network(
            self.reactor, mqtt, self.registry, self.bus, self.context.store, settings,
            mqtt_component=mqtt_name, source=self.name, store_prefix=self.context.key(),
            log=self.log,
        )
        for path in settings.automations:
            runtime = self._runtime(path)
            runtime.load()
            self.automations.append(runtime)
        if settings.generate:
            self._regenerate_observer = self.network.add_observer(_Regenerate(self))
        self.network.start()

    def _runtime(self, path: pathlib.Path, previous: AutomationRuntime | None = None
                 ) -> AutomationRuntime:
        assert self.network is not None
        self._generations += 1
        return AutomationRuntime(
            path, self.network, reactor=self.reactor, bus=self.bus,
            log=self.log, watchdog=self.context.watchdog, on_exit=self.on_exit,
            instance=str(self._generations) if self._generations > 1 else "",
            generated=previous.generated if previous is not None else None,
        )

    # -- hot reload (hadaemon.reload.interfaces) --------------------------------------------

    def watched_files(self) -> Iterable[pathlib.Path]:
        """Each automation's file and the modules next to it that it imported."""
        files: list[pathlib.Path] = []
        for runtime in self.automations:
            files.extend(runtime.files())
        return files

    def files_changed(self, paths: frozenset[pathlib.Path]) -> None:
        """Rebuild the runtime of each automation whose files changed, if it loads."""
        for index, runtime in enumerate(list(self.automations)):
            if paths.isdisjoint(runtime.files()):
                continue
            self.automations[index] = self._replace(runtime)

    def _replace(self, old: AutomationRuntime) -> AutomationRuntime:
        new = self._runtime(old.path, old)
        try:
            new.import_code()
        except Exception as exc:
            report_code_error(self.bus, self.log, f"automation:{old.name}",
                              code_error(exc, old.path.resolve()),
                              f"automation {old.path} not reloaded, the previous version "
                              "keeps running" if old.loaded and not old.stopped else
                              f"automation {old.path} still does not load")
            return old
        old.stop()
        new.attach()
        self.log.info("{component}: reloaded", component=new.component)
        return new

    def reconfigure(self, section: Mapping[str, Any], config: Any) -> None:
        """Automations added, removed or reordered: only those start or stop; any other
        key changed restarts the plugin (RestartNeeded)."""
        old = ZigbeeSettings.from_section(self.config)
        new = ZigbeeSettings.from_section(section)
        in_place = ("automations", "generate", "typecheck")
        others = [f.name for f in dataclasses.fields(ZigbeeSettings)
                  if f.name not in in_place and getattr(old, f.name) != getattr(new, f.name)]
        if others:
            raise RestartNeeded(f"[{self.name}] {', '.join(others)} changed")
        running: dict[pathlib.Path, list[AutomationRuntime]] = {}
        for runtime in self.automations:  # (a file may be listed twice: two runtimes)
            running.setdefault(runtime.path, []).append(runtime)
        automations = []
        for path in new.automations:
            kept = running.get(path)
            if kept:
                automations.append(kept.pop(0))
            else:
                added = self._runtime(path)
                added.load()
                automations.append(added)
        for gone in running.values():
            for runtime in gone:
                runtime.stop()
                self.log.info("{component}: removed", component=runtime.component)
        self.automations = automations
        if new.generate != (self._regenerate_observer is not None) and self.network:
            if new.generate:
                self._regenerate_observer = self.network.add_observer(_Regenerate(self))
                self.regenerate()
            elif self._regenerate_observer is not None:
                self._regenerate_observer()
                self._regenerate_observer = None

    def stop(self) -> Deferred[Any] | None:
        for runtime in reversed(self.automations):
            runtime.stop()
        if self.network is None:
            return None
        # Pending sets go out (and are acknowledged) before the mqtt plugin stops.
        return self.network.stop(timeout=(self.stop_timeout or 5.0) - 1.0)

    def bridge_state(self) -> dict[str, Any]:
        """The bridge as status displays show it: online, ready, info, device counts."""
        network = self.network
        if network is None:
            return {"started": False}
        info = network.bridge_info
        return {
            "started": True, "ready": network.ready, "online": network.bridge_online,
            "base_topic": network.base_topic, "version": info.get("version"),
            "permit_join": info.get("permit_join"),
            "permit_join_timeout": info.get("permit_join_timeout"),
            "devices": len(network.devices), "groups": len(network.groups),
            "messages_received": network.messages_received,
            "peer_id": getattr(network.bridge_device, "peer_id", None),
        }

    def permit_join(self, seconds: int) -> Deferred[Any]:
        """Ask zigbee2mqtt to let devices join for ``seconds`` (0 closes); fires with its
        answer (BridgeTimeout if it does not answer)."""
        if self.network is None:
            raise RuntimeError("the zigbee2mqtt adapter has not started")
        return self.network.requests.request("permit_join", {"time": int(seconds)})

    def regenerate(self) -> None:
        """Rewrite the generated module next to each automation if the network changed."""
        from hadaemon.zigbee.codegen import write_module

        network = self.network
        if network is None or network.devices_payload is None:
            return
        for runtime in self.automations:
            try:
                path, written, _result = write_module(runtime.path.parent,
                                                      network.devices_payload,
                                                      network.groups_payload)
            except OSError as exc:
                self.log.warn("cannot write the generated module next to {file}: {error}",
                              file=str(runtime.path), error=str(exc))
                continue
            if written:
                self.log.info("generated {path}", path=str(path))

    @classmethod
    def check_config(cls, section: Mapping[str, Any], config: Any) -> list[str]:
        """``hadaemon check``: each automation compiles and type-checks (mypy)."""
        from hadaemon.zigbee.typecheck import check_automations

        paths = [pathlib.Path(p) for p in section.get("automations") or []]
        return check_automations(paths, typecheck=bool(section.get("typecheck", True)),
                                 cache_dir=config.core.state_dir / "mypy-cache")


class _Regenerate:
    """Observer that regenerates the typed module when the network changes."""

    def __init__(self, plugin: ZigbeeAdapter) -> None:
        self.plugin = plugin

    def network_ready(self, first: bool) -> None:
        self.plugin.regenerate()

    def network_disconnected(self) -> None:
        pass

    def bridge_event(self, payload: dict[str, Any]) -> None:
        pass

    def devices_changed(self) -> None:
        self.plugin.regenerate()
