"""The topic layout of a site: every host's topics live under ``<site>/<host>/``.

=====================================  ======================================  =========
topic                                  what                                    retained
=====================================  ======================================  =========
``<site>/<host>/status``               presence (the [mqtt] status, last will)  yes
``<site>/<host>/devices``              index: the peer ids the host publishes   yes
``<site>/<host>/device/<peer>``        a device's description                   yes
``<site>/<host>/value/<peer>/<ch>/<n>``  a variable's value                     yes
``<site>/<host>/event/<peer>/<ch>/<n>``  an event variable's occurrence         no
``<site>/<host>/info/<name>``          a record for directories (announce)      yes
``<site>/<host>/req/<sender>``         requests to ``host`` from ``sender``     no
``<site>/<host>/resp/<responder>``     answers to ``host`` from ``responder``   no
=====================================  ======================================  =========

Channel and variable names are escaped as one level: ``%`` -> ``%25``, ``/`` -> ``%2F``
(as ``hadaemon.bus.segment`` does), and the characters MQTT forbids in a topic name,
``+`` -> ``%2B``, ``#`` -> ``%23``, NUL -> ``%00``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATUS = "status"
INDEX = "devices"
DEVICE = "device"
VALUE = "value"
EVENT = "event"
INFO = "info"
REQUEST = "req"
RESPONSE = "resp"


_ESCAPE = re.compile(r"[%/+#\x00]")
_UNESCAPE = re.compile(r"%(25|2F|2B|23|00)")


def level(value: object) -> str:
    """One value as one topic level (see the module's doc)."""
    text = str(value)
    if "%" in text or "/" in text or "+" in text or "#" in text or "\x00" in text:
        return _ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", text)
    return text  # (the usual case, per value published: no regex)


def unlevel(text: str) -> str:
    """Undo :func:`level`."""
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "%" in text else text


def check_site(site: str) -> str:
    """A site is one or more topic levels without wildcards: ValueError otherwise."""
    levels = site.split("/")
    if not site or any(not level or set(level) & set("+#\x00") for level in levels):
        raise ValueError(f"[federation].site {site!r} must be topic levels separated by "
                         f"'/', none empty, without '+', '#' or NUL")
    return site


@dataclass(frozen=True)
class Parsed:
    """A site topic taken apart: the host it is under, its kind and the rest."""

    host: str
    kind: str
    rest: tuple[str, ...]


class Layout:
    """Builds and parses the topics of one site."""

    def __init__(self, site: str) -> None:
        self.site = check_site(site)
        self._prefix = site + "/"
        self._depth = len(site.split("/"))

    def topic(self, host: str, kind: str, *rest: object) -> str:
        return "/".join([self.site, host, kind, *(level(r) for r in rest)])

    def pattern(self, host: str | None, kind: str, *rest: str) -> str:
        """A subscription filter: ``host`` None is every host (``+``); ``rest`` as given
        (wildcards allowed)."""
        return "/".join([self.site, "+" if host is None else host, kind, *rest])

    def parse(self, topic: str) -> Parsed | None:
        """None when the topic is not of this site's shape."""
        if not topic.startswith(self._prefix):
            return None
        levels = topic.split("/")[self._depth:]
        if len(levels) < 2 or not levels[0]:
            return None
        return Parsed(levels[0], levels[1], tuple(unlevel(r) for r in levels[2:]))


__all__ = ["DEVICE", "EVENT", "INDEX", "INFO", "REQUEST", "RESPONSE", "STATUS", "VALUE",
           "Layout", "Parsed", "check_site", "level", "unlevel"]
