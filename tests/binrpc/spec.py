"""Bytes as section 8 of the homegear-nodes spec writes them: its captured handshake
and ping, written out by hand (never produced by hadaemon's own codec)."""

from __future__ import annotations


def h(text: str) -> bytes:
    """Hex with spaces and quoted ASCII, as written in the spec."""
    out = b""
    for part in text.split():
        out += part[1:-1].encode() if part.startswith('"') else bytes.fromhex(part)
    return out


# The spec's annotated handshake (real client pid 18297 = 0x4779).
SETPID_REQUEST = h("""42696e00 0000003a 00000006 736574506964 00000003
                      000000d1 00007eff4a0dc6c0 000000d1 0000000000000000
                      00000100 00000001 000000d1 0000000000004779""")
SETPID_RESPONSE = h("""42696e01 00000024 00000100 00000003 000000d1 00007eff4a0dc6c0
                       000000d1 0000000000000000 00000000""")
PING_REQUEST = h("42696e00 0000001c 00000004 70696e67 00000002 00000001 00000001 "
                 "00000100 00000000")
PING_RESPONSE = h("42696e01 00000018 00000100 00000002 000000d1 0000000000000001 00000000")
