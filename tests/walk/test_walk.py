"""The walk through all three worlds, end to end, through real parts only: a real broker,
``hadaemon run`` as a process, a real node process and a service file, the sensor report
and the lamp's ``/set`` seen on the broker as zigbee2mqtt would see them."""

from __future__ import annotations

import json
import pathlib

from hadaemon.testing import BlockingClient, Broker, ChildProcesses, DaemonProcess
from hadaemon.zigbee.simulator import sample_devices
from tests.walk.scenario import LAMP_SET, SENSOR, write_walk


def test_a_sensor_report_walks_through_a_node_and_a_service_to_a_lamp(
    tmp_path: pathlib.Path, broker: Broker, processes: ChildProcesses
) -> None:
    zigbee2mqtt = BlockingClient(broker).connect()
    zigbee2mqtt.publish("zigbee2mqtt/bridge/devices", json.dumps(sample_devices()),
                        retain=True)
    zigbee2mqtt.subscribe(LAMP_SET)
    config = write_walk(tmp_path, broker.host, broker.port)
    daemon = DaemonProcess(config, processes=processes).start(timeout=30)
    try:
        daemon.wait_for_output("relay ready")                   # the node (its stdout)
        daemon.wait_for_output("walk lamp ready")               # the service
        daemon.wait_for_output("zigbee2mqtt: device Garden 2ch")  # the last device
        zigbee2mqtt.publish(SENSOR, json.dumps({"humidity": 42, "temperature": 21.5}))
        lamp_set = zigbee2mqtt.expect(LAMP_SET, timeout=10)
        assert json.loads(lamp_set.payload) == {"brightness": 42}
        assert lamp_set.qos == 1            # [zigbee2mqtt].qos: none lost across reconnects
        # A second report takes the same way (the node's lamp lookup is done once).
        zigbee2mqtt.publish(SENSOR, json.dumps({"humidity": 57.0, "temperature": 21.5}))
        assert json.loads(zigbee2mqtt.expect(LAMP_SET, timeout=10).payload) == {
            "brightness": 57}
        # A report that changes only the temperature sets nothing: the node's events
        # filter lets only humidity through. Then one more humidity: its /set is the very
        # next message, so nothing came in between.
        zigbee2mqtt.publish(SENSOR, json.dumps({"humidity": 57.0, "temperature": 22.5}))
        zigbee2mqtt.publish(SENSOR, json.dumps({"humidity": 60, "temperature": 22.5}))
        assert json.loads(zigbee2mqtt.expect(LAMP_SET, timeout=10).payload) == {
            "brightness": 60}
    except BaseException:
        print(daemon.output()[-6000:])  # pytest shows it with the failure
        raise
    finally:
        status = daemon.stop()
        zigbee2mqtt.close()
    assert status == 0, daemon.output()[-4000:]
    output = daemon.output()
    assert "Traceback" not in output and "#error]" not in output, output[-4000:]
