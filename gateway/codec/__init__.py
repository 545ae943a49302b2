"""Records coded to the national standard, validated, and carried in a versioned wire format."""

from gateway.codec.errors import CodecError, FieldError
from gateway.codec.messages import Feedback, Message, Notification, Person, Query, parse_message
from gateway.codec.wire import WIRE_VERSION, decode, encode

__all__ = [
    "WIRE_VERSION",
    "CodecError",
    "Feedback",
    "FieldError",
    "Message",
    "Notification",
    "Person",
    "Query",
    "decode",
    "encode",
    "parse_message",
]
