"""``pyziggy.broadcasters``: listener lists."""

from hadaemon.zigbee.broadcasters import Broadcaster, ListenerCancellationToken

AnyBroadcaster = Broadcaster

__all__ = ["AnyBroadcaster", "Broadcaster", "ListenerCancellationToken"]
