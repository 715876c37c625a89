"""The Units loop's shared live cache keeps each object as compact JSON (``livecache.packed``) and gives every
reader its own parse.

What a reader gets back must be the object as the watch delivered it, every field and type (the drift check
reads managedFields from it); an object too deep to parse again safely stays parsed; and a packed object costs
a fraction of a parsed one (why it is packed: bench/README.md, "Where the memory goes")."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.livecache import PACK_DEPTH, packed, unpacked

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
BODIES = st.dictionaries(
    st.text(),
    st.recursive(SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8),
    max_size=4,
)

CONFIGMAP = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {
        "name": "u-0001-0", "namespace": "u1k-00", "uid": "0b9a3c2e-8a41-4f7e-9f61-3c1d2e4f5a6b",
        "resourceVersion": "123456", "creationTimestamp": "2026-12-05T16:51:02Z",
        "labels": {"app": "u-0001", "gitopsguard.io/unit": "u1k-00.u-0001"},
        "managedFields": [
            {"manager": "gitopsguard", "operation": "Apply", "apiVersion": "v1", "time": "2026-12-05T16:51:02Z",
             "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:index": {}, "f:unit": {}},
                          "f:metadata": {"f:labels": {"f:app": {}, "f:gitopsguard.io/unit": {}}}}},
        ],
    },
    "data": {"unit": "u-0001", "index": "0"},
}  # fmt: skip


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (True == 1 and 1 == 1.0 in Python; not in Kubernetes)."""
    return json.dumps(a) == json.dumps(b) and repr(a) == repr(b)


@given(BODIES)
@example(CONFIGMAP)
@example({"n": 10**40, "f": -0.0, "t": True, "one": 1, "float": 1.0, "s": "é\u2028\ud800", "": None})
def test_a_reader_gets_the_object_as_the_watch_delivered_it(body: dict[str, Any]) -> None:
    assert same(unpacked(packed(body)), body)


def test_each_reader_gets_a_copy_of_its_own() -> None:
    kept = packed(CONFIGMAP)
    first = unpacked(kept)
    first["metadata"]["managedFields"].clear()
    first["data"]["unit"] = "changed by a reader"
    assert same(unpacked(kept), CONFIGMAP)


def test_an_object_nested_deeper_than_the_bound_is_kept_as_parsed() -> None:
    deep: dict[str, Any] = {"spec": []}
    inner = deep["spec"]
    for _ in range(PACK_DEPTH + 5):
        inner.append([])
        inner = inner[0]
    assert packed(deep) is deep
    assert unpacked(packed(deep)) is deep
    shallow: dict[str, Any] = {"spec": [[[]]]}
    assert isinstance(packed(shallow), str)


def test_a_packed_configmap_costs_under_a_third_of_a_parsed_one() -> None:
    text = json.dumps(CONFIGMAP)
    tracemalloc.start()
    try:
        parsed = [json.loads(text) for _ in range(200)]
        as_parsed = tracemalloc.get_traced_memory()[0]
        del parsed
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        kept = [packed(json.loads(text)) for _ in range(200)]
        as_packed = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert len(kept) == 200
    assert as_packed * 3 < as_parsed, f"packed {as_packed} bytes against parsed {as_parsed} for 200 ConfigMaps"
