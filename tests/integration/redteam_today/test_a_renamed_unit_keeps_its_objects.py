"""Red team, issue 19 (gc19 with par19): a Unit renamed in the root path, its folder unchanged, is a new Unit
that declares the very objects the old name applied. Who: anyone whose commit to the root path merely renames a
Unit (a tidy-up, or a bad commit). What must hold: the objects both names declare are never deleted; the old
name retires without taking them along (each round used to retire before it served, so the old name's
retirement deleted them and the new name's first pass created them again: every Pod gone, new uids).

On the real API server, with the retirement tests' repository (``test_units_retire.py``: Units ``a`` to ``d``,
each applying one ConfigMap of its name)."""

from __future__ import annotations

from kubernetes import client

from gitopsguard.model import Action
from tests.integration.test_units_retire import NAMES, Repo, all_ready
from tests.integration.test_units_retire import repo as repo  # the fixture, used by name
from tests.kube import meta
from tests.waiting import eventually


def _uid(repo: Repo, name: str) -> str:
    body = client.CoreV1Api(repo.api).read_namespaced_config_map(name, repo.namespace)
    return str(meta(body).uid)


def test_a_unit_renamed_in_the_root_path_deletes_none_of_the_objects_its_new_name_declares(repo: Repo) -> None:
    loop = repo.start()
    all_ready(repo)
    before = _uid(repo, "d")
    repo.declare(**{n: f"{{path: {n}}}" for n in NAMES if n != "d"}, e="{path: d}")  # d is now called e
    repo.commit("rename d to e")
    eventually(lambda: repo.ready("e") and not repo.inventory("d") and repo.recorded() == "4", 90, every=0.5)
    deleted = [(r.unit, c.key.name) for r in loop.results for c in r.changes
               if c.action is Action.DELETED and c.key.kind != "Unit"]  # fmt: skip
    assert deleted == [], "the old name's retirement deleted what the new name declares"
    assert _uid(repo, "d") == before and repo.value("d") == "1"
