"""What a unit owns is read in the namespaces its inventory and render name, and nowhere else.

Anyone who may label an object may file it under any unit's id. An object so labelled in a namespace the unit
does not apply to must never be taken for the unit's (adopted, compared, pruned), and one no client can parse
there must not stop the unit's reads (``tests/integration/redteam_units/``: a tenant's Gadget 1,500 levels
deep stopped every pass of another team's Unit)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier, OwnedSnapshot
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.model import UNIT_LABEL, ObjectKey
from tests.integration.test_deep_objects import DEEP
from tests.integration.test_tenant_impersonation import make_namespace

pytestmark = pytest.mark.integration
UNIT = "shop.apps"


def labelled_gadget(raw: RawApi, group: str, namespace: str, name: str, spec: str) -> None:
    metadata = f'{{"name": "{name}", "labels": {{"{UNIT_LABEL}": "{UNIT}"}}}}'
    body = f'{{"apiVersion": "{group}/v1", "kind": "Gadget", "metadata": {metadata}, "spec": {spec}}}'
    request = Request("POST", f"/apis/{group}/v1/namespaces/{namespace}/gadgets", {}, body.encode())
    for _ in range(150):  # the CRD is served a moment after it is created
        if (answer := raw.send_all([request], 1)[0]).status != 404:
            break
        time.sleep(0.2)
    assert answer.status == 201, answer


@pytest.fixture
def elsewhere(admin_api: client.ApiClient) -> Iterator[str]:
    """Another namespace (a tenant's), removed after the test."""
    name = make_namespace(admin_api)
    yield name
    client.CoreV1Api(admin_api).delete_namespace(name)


def test_an_object_labelled_with_the_units_id_in_another_namespace_is_never_the_units(
    admin_api: client.ApiClient, namespace: str, elsewhere: str
) -> None:
    core = client.CoreV1Api(admin_api)
    for where, name in ((namespace, "mine"), (elsewhere, "bait")):
        meta = client.V1ObjectMeta(name=name, labels={UNIT_LABEL: UNIT})
        core.create_namespaced_config_map(where, client.V1ConfigMap(metadata=meta, data={"v": "1"}))
    mine, bait = ObjectKey("", "ConfigMap", namespace, "mine"), ObjectKey("", "ConfigMap", elsewhere, "bait")
    applier = Applier(admin_api)
    assert set(applier.list_owned([("v1", "ConfigMap", namespace)], UNIT)) == {mine}
    assert bait in applier.list_owned([("v1", "ConfigMap", elsewhere)], UNIT), "the bait is there to be found"
    absent = ObjectKey("", "ConfigMap", namespace, "absent")
    assert set(OwnedSnapshot(applier, UNIT).of([("v1", mine), ("v1", absent)])) == {mine}


def test_an_unparseable_object_labelled_with_the_units_id_elsewhere_does_not_stop_its_reads(
    admin_api: client.ApiClient, namespace: str, elsewhere: str, gadgets: str
) -> None:
    raw = RawApi(admin_api)
    labelled_gadget(raw, gadgets, namespace, "tool", '{"size": 1}')
    labelled_gadget(raw, gadgets, elsewhere, "bait", DEEP)
    listed = Applier(admin_api).list_owned([(f"{gadgets}/v1", "Gadget", namespace)], UNIT)
    assert set(listed) == {ObjectKey(gadgets, "Gadget", namespace, "tool")}


def test_an_unparseable_object_in_the_units_own_namespace_still_fails_its_reads(
    admin_api: client.ApiClient, namespace: str, gadgets: str
) -> None:
    """Fail closed: what the unit's own namespace holds cannot be read, so it is not read as absent."""
    raw = RawApi(admin_api)
    labelled_gadget(raw, gadgets, namespace, "bait", DEEP)
    with pytest.raises(Exception, match="nested deeper"):
        Applier(admin_api).list_owned([(f"{gadgets}/v1", "Gadget", namespace)], UNIT)
