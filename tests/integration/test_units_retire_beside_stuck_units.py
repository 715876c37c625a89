"""A Unit removed for good is retired within a bounded number of rounds, however stuck the Units that stay are
(``fleet_retire.py``). Who: a retirement that waited for every declared Unit to take its objects over would be
held for good by one that never will: suspended, waiting for a dependency that fails, or failing itself; the
objects of a Unit removed on purpose would then stay forever. What a stuck Unit claims is read from its folder
instead, so it holds nothing it does not declare.

On the real API server, with the retirement tests' repository (``test_units_retire.py``: Units ``a`` to ``d``,
each applying one ConfigMap of its name) and a fifth Unit ``e``; the loop's rounds are run by hand, one at a
time, so that "bounded" is counted in rounds."""

from __future__ import annotations

import threading
from collections.abc import Callable

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.fleet import Fleet, accounts
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.integration.test_units_loop import configmap
from tests.integration.test_units_retire import Repo
from tests.integration.test_units_retire import repo as repo  # the fixture, used by name
from tests.waiting import eventually

ROUNDS = 2  # the round whose root applies the removal retires; one more for a round the root's event woke


def test_a_unit_removed_for_good_is_retired_within_two_rounds_beside_suspended_waiting_and_failing_units(
    repo: Repo,
) -> None:
    ns, stop, results = repo.namespace, threading.Event(), list[ReconcileResult]()
    own = Applier(repo.api)
    fleet = Fleet(Unit(f"{ns}-root", "root", ns, policies_path=None),
                  GitSource(SourceSpec(repo.upstream.url), repo.workdir / "gg"), own, InventoryStore(repo.api),
                  RawApi(repo.api), interval=60, on_result=results.append, account_of=accounts(own))  # fmt: skip

    def round_served() -> None:
        fleet.wake()
        fleet._round(stop)

    def served_until(done: Callable[[], bool]) -> None:
        def served() -> bool:
            round_served()
            return done()

        eventually(served, 90, every=0.2)

    units = {"a": "{path: a}", "b": "{path: b}", "c": "{path: c}", "d": "{path: d, dependsOn: [{name: e}]}",
             "e": "{path: e}"}  # fmt: skip
    repo.upstream.write("e/cm.yaml", configmap("e", ns, "1"))
    repo.declare(**units)
    repo.commit("e, and d needs it")
    served_until(lambda: all(repo.ready(n) for n in units))
    # c suspended in Git; e's folder no longer renders, so e fails and d waits for it, for good
    repo.declare(**(units | {"c": "{path: c, suspend: true}"}))
    repo.upstream.write("e/broken.yaml", "kind: [unclosed\n")
    repo.upstream.write("d/cm.yaml", configmap("d", ns, "2"))
    repo.commit("c suspended, e broken")
    served_until(lambda: (repo.reason("c"), repo.reason("d"), repo.reason("e")) == (
        "Suspended", "DependencyNotReady", "BuildFailed"))  # fmt: skip
    repo.declare(**{n: s for n, s in units.items() if n != "b"} | {"c": "{path: c, suspend: true}"})
    repo.commit("b leaves for good")
    for _ in range(ROUNDS):
        round_served()
    assert repo.value("b") is None and not repo.inventory("b") and repo.recorded() == "4", "b is retired"
    assert [repo.value(n) for n in "acde"] == ["1", "1", "1", "1"], "the stuck Units keep theirs (d waits)"
    deleted = [c.key.name for r in results for c in r.changes if c.action is Action.DELETED and c.key.kind != "Unit"]
    assert deleted == ["b"]
    InventoryStore(repo.api).delete(f"{ns}.e")
