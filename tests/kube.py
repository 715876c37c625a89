"""Typed reads of the kubernetes client's models for tests.

Every field of the client's models is Optional, because the OpenAPI schema marks almost nothing required. The API
server does send metadata, names and a ConfigMap's data for the objects a test made; when it does not, the test
fails here with the object's kind in the message rather than with ``'NoneType' object is not subscriptable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from kubernetes import client
from pydantic import BaseModel

Model = TypeVar("Model", bound=BaseModel)


class HasMetadata(Protocol):
    @property
    def metadata(self) -> client.V1ObjectMeta | None: ...


def meta(obj: HasMetadata | None) -> client.V1ObjectMeta:
    """``obj.metadata``; a test fails when there is no object (a read that found none) or it came without."""
    assert obj is not None, "no such object"
    assert obj.metadata is not None, f"{type(obj).__name__} came without metadata"
    return obj.metadata


def name_of(obj: HasMetadata | None) -> str:
    """``obj.metadata.name``; a test fails when the object has none."""
    name = meta(obj).name
    assert name is not None, f"{type(obj).__name__} came without metadata.name"
    return name


def labels_of(obj: HasMetadata | None) -> dict[str, str]:
    """``obj.metadata.labels``; a test fails when the object has none (the server omits an empty map)."""
    labels = meta(obj).labels
    assert labels is not None, f"{type(obj).__name__}/{meta(obj).name} has no labels"
    return labels


def data_of(configmap: client.V1ConfigMap | None) -> dict[str, str]:
    """A ConfigMap's ``data``; a test fails when there is no ConfigMap or it has no data."""
    assert configmap is not None, "no such ConfigMap"
    assert configmap.data is not None, f"ConfigMap/{meta(configmap).name} has no data"
    return configmap.data


def binary_data_of(configmap: client.V1ConfigMap) -> dict[str, bytes | str]:
    """A ConfigMap's ``binaryData`` (base64 text as the client returns it); a test fails when it has none."""
    assert configmap.binary_data is not None, f"ConfigMap/{meta(configmap).name} has no binaryData"
    return configmap.binary_data


def as_model(kind: type[Model], body: Mapping[str, Any]) -> Model:
    """A raw Kubernetes body as the client's model ``kind``.

    The client's verbs are annotated with models but validate a plain dict into the model when called (pydantic's
    ``validate_call``); doing that validation here is the same step, made visible to the type checker.
    """
    return kind.model_validate(body)


def close(api: client.ApiClient) -> None:
    """Close a client's connection pool."""
    api.close()  # type: ignore[no-untyped-call]  # the client's own method is unannotated in its package


def pod_status(pod: client.V1Pod) -> client.V1PodStatus:
    """A Pod's status, failing the test (with the Pod named) when the server sent none."""
    assert pod.status is not None, f"Pod {name_of(pod)} has no status"
    return pod.status


def pod_spec(pod: client.V1Pod) -> client.V1PodSpec:
    assert pod.spec is not None, f"Pod {name_of(pod)} has no spec"
    return pod.spec
