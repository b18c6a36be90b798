"""Example pyziggy automation (it runs unchanged under pyziggy too): someone in the hall
turns the hall light on, and it goes off a few seconds after the hall is empty; the
remote's button toggles the kitchen bulb.

In the example config the zigbee2mqtt simulator plays the devices (someone walks
through the hall every few seconds). Without generated code the devices appear on
``devices`` once the network is known, hence the listeners are added in on_connect.
"""

from typing import Any

from pyziggy.message_loop import MessageLoopTimer
from pyziggy_autogenerate.available_devices import AvailableDevices

OFF_AFTER = 5.0  # seconds

devices: Any = AvailableDevices()


def lights_off(timer: MessageLoopTimer) -> None:
    timer.stop()
    devices.hallway_hue.state.set(False)


off_timer = MessageLoopTimer(lights_off)


def on_motion() -> None:
    if devices.hall_motion.occupancy.get():
        off_timer.stop()
        devices.hallway_hue.state.set(True)  # one /set with both values
        devices.hallway_hue.brightness.set_normalized(0.8)
    else:
        off_timer.start(OFF_AFTER)


def on_remote() -> None:
    action = devices.tradfri_remote.action.get()
    if getattr(action, "value", action) == "toggle":
        kitchen = devices.kitchen_bulb.state
        kitchen.set(not kitchen.get())


def on_connect() -> None:
    devices.hall_motion.occupancy.add_listener(on_motion)
    devices.tradfri_remote.action.add_listener(on_remote)


devices.on_connect.add_listener(on_connect)
