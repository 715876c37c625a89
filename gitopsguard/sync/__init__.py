"""The sync stage: what a pass does to the cluster, one module per verb, each returning its changes as data.

    apply.py       dry-run what may have changed, then apply what would change (CRDs and Namespaces first)
    rollback.py    undo what a failed pass created (its new Namespaces and CRDs), and nothing else
    refused.py     the objects the server refused, as changes carried by the error that refuses the revision
    prune.py       delete what left Git, behind the mass-prune brake
    unmanaged.py   report, or back up and delete, workloads Git does not describe in opted-in namespaces
    wait.py        wait until what a pass applied is healthy (a Unit's spec.wait), one fails, or the deadline

Each takes values (prepared objects, the inventory, an ``Applier``) and returns a frozen result holding
``model.Change`` values; the recipe (``reconcile.py``) composes them and never reads their words.
"""

from gitopsguard.sync.apply import Applied, Target, Versions, apply_changed, apply_revision
from gitopsguard.sync.prune import Pruned, plan_pruning, prune
from gitopsguard.sync.refused import RefusedObjectsError
from gitopsguard.sync.rollback import RolledBackError, roll_back
from gitopsguard.sync.unmanaged import Holding, Swept, sweep
from gitopsguard.sync.wait import Ending, ObjectHealth, Waited, compile_checks, wait_for_unit, wait_healthy, waited_for

__all__ = [
    "Applied", "Ending", "Holding", "ObjectHealth", "Pruned", "RefusedObjectsError", "RolledBackError", "Swept",
    "Target", "Versions", "Waited", "apply_changed", "apply_revision", "compile_checks", "plan_pruning", "prune",
    "roll_back", "sweep", "wait_for_unit", "wait_healthy", "waited_for",
]  # fmt: skip
