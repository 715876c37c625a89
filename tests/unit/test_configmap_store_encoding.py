"""The ConfigMap store's blobs: what is packed reads back the same, blobs older versions wrote (zlib) still
read, and whatever a hand edit puts there (a bomb, a cut-off stream, parts that do not match their index)
is refused rather than half-read."""

from __future__ import annotations

import base64
import gzip
import hashlib
import zlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.configmaps import MAX_INFLATED, Content, Packed, _index, _split
from gitopsguard.errors import ClusterError


@given(st.binary(max_size=5000))
@example(b"")
@example(b"\x1f\x8b")  # gzip's magic, as data
def test_a_packed_blob_reads_back_as_it_was(raw: bytes) -> None:
    packed = Packed.of(raw)
    assert packed.raw() == raw and packed.size == len(packed.text)
    assert Packed.of(raw) == packed  # no timestamp inside: an unchanged value packs the same


def test_a_blob_compressed_with_zlib_by_an_earlier_version_still_reads() -> None:
    assert Packed(base64.b64encode(zlib.compress(b'{"a":1}', 9)).decode()).raw() == b'{"a":1}'


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(gzip.compress(b"\0" * (MAX_INFLATED + 1))).decode(),  # a bomb
        base64.b64encode(gzip.compress(b"x" * 1000)[:-30]).decode(),  # cut off
        base64.b64encode(b"plain text, never compressed").decode(),
        "not base64 !",
    ],
    ids=["bomb", "cut-off", "not-compressed", "not-base64"],
)
def test_a_damaged_blob_is_refused_not_half_read(text: str) -> None:
    with pytest.raises((ValueError, zlib.error)):
        Packed(text).raw()


def test_parts_that_do_not_match_their_index_are_refused_naming_the_configmap() -> None:
    joined = b"abcdef"
    digest = hashlib.sha256(joined).hexdigest()
    assert {k: p.text for k, p in _split("ConfigMap/ns/x", joined, digest, {"a": 2, "b": 4}).items()} == {
        "a": base64.b64encode(b"ab").decode(),
        "b": base64.b64encode(b"cdef").decode(),
    }
    with pytest.raises(ClusterError, match=r"^ConfigMap/ns/x: cannot be read .*digest"):
        _split("ConfigMap/ns/x", b"abcdeX", digest, {"a": 2, "b": 4})
    with pytest.raises(ClusterError, match=r"^ConfigMap/ns/x: cannot be read"):
        _split("ConfigMap/ns/x", joined, digest, {"a": 2, "b": 5})


def test_a_value_in_parts_leaves_its_index_no_blobs_and_names_every_part() -> None:
    content = Content({"unit": "apps"}, {"b": Packed.of(b"two"), "a": Packed.of(b"one")}, {"app": "x"})
    inline = _index("inv", content, "", (), inline=True)
    assert set(inline["binaryData"]) == {"a", "b"} and "annotations" not in inline["metadata"]
    split = _index("inv", content, "t0k3n", ("inv.t0k3n.0",), inline=False)
    assert split["binaryData"] == {} and split["data"] == {"unit": "apps"}
    assert split["metadata"]["labels"] == {"app": "x"}
    assert '"parts":["inv.t0k3n.0"]' in split["metadata"]["annotations"]["gitopsguard.io/parts"]
