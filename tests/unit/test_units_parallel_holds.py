"""Passes of several Units at once (``fleet_pool.py``) that each repair drift from their own last applied
commit: they share one second working tree (``GitSource.checkout_of``), so one pass's checkout must not move
under another's render. A Unit rendered at another Unit's commit would apply objects its own Git history
never had (the attacker: a team whose commit is refused, so its Unit holds an older commit, while another
Unit holds a newer one)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.reconcile import Reconciler, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: app, namespace: shop}}
data: {{value: "{value}"}}
"""


def test_units_held_at_different_commits_each_render_their_own_commit_side_by_side(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "git")
    commits: dict[str, str] = {}
    for value in ("one", "two", "three"):
        for older in (upstream.work / "app").glob("*.yaml") if commits else ():
            older.unlink()
        upstream.write("app/cm.yaml", CONFIGMAP.format(value=value))
        upstream.write(f"app/{value}.yaml", CONFIGMAP.format(value=value).replace("name: app", f"name: {value}"))
        commits[upstream.commit(value)] = value
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    source.fetch(last_applied=None)
    # no applier or inventory is needed to render a held commit; a store on disk would hide the checkout
    reconciler = Reconciler(source, cast(Applier, None), cast(InventoryStore, None), stored=None)
    unit = Unit("shop.app", "app", "shop", policies_path=None)
    wrong: list[str] = []

    def holds(turns: int, offset: int) -> None:
        for n in range(turns):
            commit = list(commits)[(n + offset) % len(commits)]
            rendered = reconciler._render_last_applied(unit, commit)
            values = sorted(str(m.body["data"]["value"]) for m in rendered)
            if values != [commits[commit]] * 2:
                wrong.append(f"{commits[commit]}: {values}")

    threads = [threading.Thread(target=holds, args=(12, k)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not wrong, f"renders at another Unit's commit: {wrong[:5]}"
