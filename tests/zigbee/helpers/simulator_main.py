"""A simulated zigbee2mqtt in a process of its own: ``python simulator_main.py HOST PORT``."""

from __future__ import annotations

import sys

from hadaemon.reactor import install_asyncio_reactor


def main() -> None:
    reactor = install_asyncio_reactor()
    from hadaemon.mqtt import MqttConnection, MqttSettings
    from hadaemon.zigbee.simulator import Zigbee2MqttSimulator, sample_devices, sample_groups

    settings = MqttSettings(host=sys.argv[1], port=int(sys.argv[2]), client_id="sim-process",
                            reconnect_delay=0.05, reconnect_delay_max=0.2)
    connection = MqttConnection(reactor, settings, status=False,
                                will=("zigbee2mqtt/bridge/state", b'{"state": "offline"}'))
    simulator = Zigbee2MqttSimulator(reactor, connection, sample_devices(),
                                     groups=sample_groups())

    def go() -> None:
        simulator.start()
        connection.start()
        print("simulator running", flush=True)

    reactor.callWhenRunning(reactor.callLater, 0, go)
    reactor.run()


if __name__ == "__main__":
    main()
