"""A name from Git addresses exactly one object: an empty, "." or ".." name is refused before anything is sent,
and any other character stays inside one path segment. (The client builds the collection's path for an empty
name, where a DELETE deletes every object of the kind.)"""

from __future__ import annotations

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.errors import ApplyError
from gitopsguard.model import ObjectKey
from tests.kube import as_model, name_of

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_a_delete_of_an_object_without_a_real_name_is_refused_and_empties_nothing(
    admin_api: client.ApiClient, namespace: str, name: str
) -> None:
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_config_map(namespace, as_model(client.V1ConfigMap, {"metadata": {"name": "bystander"}}))
    with pytest.raises(ApplyError, match=r"metadata\.name .* is not a name"):
        Applier(admin_api).delete(ObjectKey("", "ConfigMap", namespace, name), "v1")
    assert "bystander" in [name_of(c) for c in core.list_namespaced_config_map(namespace).items]


@pytest.mark.parametrize("name", ["a?b=c", "a#b", "a/b", "%2e%2e", "a b"])
def test_other_characters_stay_inside_one_path_segment(admin_api: client.ApiClient, namespace: str, name: str) -> None:
    path = Applier(admin_api).object_path("v1", ObjectKey("", "ConfigMap", namespace, name))
    assert path.startswith(f"/api/v1/namespaces/{namespace}/configmaps/")
    assert "/" not in path.removeprefix(f"/api/v1/namespaces/{namespace}/configmaps/")
    assert not set("?# ") & set(path)
