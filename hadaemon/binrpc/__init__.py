"""Homegear binary RPC, the wire of the real ``homegear`` client module: a pure codec."""

from hadaemon.binrpc.packets import (
    MAGIC,
    MAX_DATA,
    MAX_HEADER,
    Decoder,
    Packet,
    Request,
    Response,
    encode_fault,
    encode_request,
    encode_response,
    encode_with_headers,
    parse_body,
)
from hadaemon.binrpc.values import (
    Base64,
    BinRpcError,
    decode_float,
    decode_value,
    encode_float,
    encode_value,
)

__all__ = [
    "MAGIC",
    "MAX_DATA",
    "MAX_HEADER",
    "Base64",
    "BinRpcError",
    "Decoder",
    "Packet",
    "Request",
    "Response",
    "decode_float",
    "decode_value",
    "encode_fault",
    "encode_float",
    "encode_request",
    "encode_response",
    "encode_value",
    "encode_with_headers",
    "parse_body",
]
