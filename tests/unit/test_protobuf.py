"""cluster.protobuf (pure): the resourceVersion and the Status message out of a protobuf answer."""

from __future__ import annotations

import pytest

from gitopsguard.cluster.protobuf import MAGIC, ProtobufError, resource_version, status_message


def varint(value: int) -> bytes:
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def number(number_: int, value: int) -> bytes:
    return varint(number_ << 3) + varint(value)


def envelope(obj: bytes) -> bytes:
    type_meta = field(1, b"apps/v1") + field(2, b"Deployment")
    return MAGIC + field(1, type_meta) + field(2, obj) + field(4, b"application/vnd.kubernetes.protobuf")


def test_resource_version_is_read_from_the_objects_metadata_past_other_fields() -> None:
    metadata = field(1, b"web") + field(3, b"shop") + field(6, b"123456") + number(7, 3) + field(17, b"x" * 300)
    deployment = field(1, metadata) + field(2, b"\x08\x02" + b"s" * 200) + field(3, b"")
    assert resource_version(envelope(deployment)) == "123456"
    assert resource_version(envelope(field(1, field(1, b"web")))) == ""


def test_status_message_is_read_from_a_status() -> None:
    status = field(1, b"") + field(2, b"Failure") + field(3, b'Deployment.apps "web" is invalid') + number(6, 422)
    assert status_message(envelope(status)) == 'Deployment.apps "web" is invalid'


@pytest.mark.parametrize("data", [b'{"kind":"Status"}', MAGIC + field(2, b"\x0a\x05ab"), MAGIC + b"\x12\xff"])
def test_json_or_truncated_bytes_are_refused_not_misread(data: bytes) -> None:
    with pytest.raises(ProtobufError):
        resource_version(data)
