"""Every replica knows every Unit's applied policies, served there or not (issue 19): the follower of the Units'
inventories (``scan/following.py``) reads, from the replica's own clone, each Unit's own policies at the commit
its inventory says it last applied, into the namespace it was applied to. It reads a Unit again only when that
commit or its settings moved, keeps the last known policies when they cannot be read, and forgets a Unit the
root's applied commit no longer declares. Real git repositories; the inventories' heads given as data."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.policy import PolicySet
from gitopsguard.reconcile import Unit
from gitopsguard.scan.following import Head, UnitsFollower, head_of, settings_of
from gitopsguard.scan.governed import Governed
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.unit.units_policies_repo import repository, root_unit, settings, units

SHOP, WEB = "shop.app", "web.app"


def _names(governed: Governed, root: PolicySet, namespace: str) -> list[str]:
    found = governed.governance(root)
    assert found is not None
    return [p.name for p in found.for_namespace(namespace).policies]


def _follower(upstream: Upstream, tmp_path: Path) -> UnitsFollower:
    source = GitSource(SourceSpec(upstream.url, "main"), tmp_path / "replica")
    source.fetch(last_applied=None)
    return UnitsFollower(root_unit(), source, Governed())


def _applied(root: Unit, commit: str, *, shop_policies: str | None = "shop-policies") -> dict[str, Head]:
    return {"root": Head(commit, root.settings), SHOP: Head(commit, settings(root, "shop", "shop", shop_policies)),
            WEB: Head(commit, settings(root, "web", "web", None))}  # fmt: skip


def test_a_unit_this_replica_does_not_serve_governs_its_namespace_by_the_policies_it_applied(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "git")
    first = repository(upstream, "shop", "web")
    follower = _follower(upstream, tmp_path)
    root = PolicySet()
    follower.follow_once(first, _applied(follower.root, first))
    assert _names(follower.governed, root, "shop") == ["shop.app/read-only-root-pods"]
    assert _names(follower.governed, root, "web") == [] and _names(follower.governed, root, "elsewhere") == []
    assert follower.reads == 2


def test_at_rest_nothing_is_read_again_and_a_new_applied_commit_is_read_once(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "git")
    first = repository(upstream, "shop", "web")
    follower = _follower(upstream, tmp_path)
    follower.follow_once(first, _applied(follower.root, first))
    for _ in range(3):
        follower.follow_once(first, _applied(follower.root, first))
    assert follower.reads == 2, "a Unit is read only when its commit or settings moved"
    upstream.write("shop-policies/read-only-root.yaml", "")  # shop drops its rule in a commit it applies
    second = upstream.commit()
    heads = _applied(follower.root, first) | {
        SHOP: Head(second, settings(follower.root, "shop", "shop", "shop-policies"))
    }
    follower.follow_once(first, heads)  # the root is still at the first commit: the Units are the root's
    assert follower.reads == 3
    assert _names(follower.governed, PolicySet(), "shop") == []


def test_a_refused_revision_changes_nothing_because_it_moves_no_inventory(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "git")
    first = repository(upstream, "shop", "web")
    follower = _follower(upstream, tmp_path)
    follower.follow_once(first, _applied(follower.root, first))
    upstream.write("shop-policies/read-only-root.yaml", "kind: PolicyException\n")  # refused by its gate
    upstream.commit()
    follower.follow_once(first, _applied(follower.root, first))  # its inventory still names the first commit
    assert _names(follower.governed, PolicySet(), "shop") == ["shop.app/read-only-root-pods"]


def test_policies_that_cannot_be_read_keep_the_last_known_and_none_known_makes_the_namespace_unknown(
    tmp_path: Path,
) -> None:
    upstream = Upstream(tmp_path / "git")
    first = repository(upstream, "shop", "web")
    follower = _follower(upstream, tmp_path)
    gone = "0" * 40  # a commit this clone cannot check out (history rewritten, a damaged inventory)
    follower.follow_once(first, _applied(follower.root, gone))
    found = follower.governed.governance(PolicySet())
    assert found is not None and found.unknown == {"shop": SHOP, "web": WEB}
    follower.follow_once(first, _applied(follower.root, first))
    follower.follow_once(first, _applied(follower.root, gone))
    found = follower.governed.governance(PolicySet())
    assert found is not None and found.unknown == {}
    assert _names(follower.governed, PolicySet(), "shop") == ["shop.app/read-only-root-pods"]


def test_a_unit_removed_from_the_root_stops_governing_its_namespace(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "git")
    first = repository(upstream, "shop", "web")
    follower = _follower(upstream, tmp_path)
    follower.follow_once(first, _applied(follower.root, first))
    upstream.write("root/units.yaml", units("shop", "web").split("---\n")[1])  # only web's Unit is left
    second = upstream.commit()
    follower.follow_once(second, _applied(follower.root, first))  # shop's inventory is still there
    assert _names(follower.governed, PolicySet(), "shop") == []


def test_a_unit_is_followed_into_the_namespace_it_was_applied_to_not_where_its_new_spec_points(
    tmp_path: Path,
) -> None:
    """The root moved shop's Unit to another namespace; until a pass applies it there, its policies govern the
    namespace its last applied commit went to."""
    upstream = Upstream(tmp_path / "git")
    first = repository(upstream, "shop", "web", unit_namespace="platform")
    follower = _follower(upstream, tmp_path)
    ids = {"root": Head(first, follower.root.settings),
           "platform.shop": Head(first, settings(follower.root, "shop", "shop", "shop-policies")),
           "platform.web": Head(first, settings(follower.root, "web", "web", None))}  # fmt: skip
    follower.follow_once(first, ids)
    assert _names(follower.governed, PolicySet(), "shop") == ["platform.shop/read-only-root-pods"]
    upstream.write("root/units.yaml", units("moved", "web", unit_namespace="platform"))
    second = upstream.commit()
    follower.follow_once(second, ids)
    assert _names(follower.governed, PolicySet(), "shop") == ["platform.shop/read-only-root-pods"]
    assert _names(follower.governed, PolicySet(), "moved") == []


PATHS = st.from_regex(r"[a-z0-9._@+~-]{1,12}(/[a-z0-9._@+~-]{1,12}){0,3}", fullmatch=True)


@given(root=st.one_of(st.none(), PATHS), own=st.one_of(st.none(), PATHS), namespace=st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True))  # fmt: skip
@example(root="policies", own="policies+x", namespace="a")  # "+" belongs to paths too
@example(root="pol+icies", own="x", namespace="a")
def test_the_settings_a_unit_was_applied_with_read_back_as_written(
    root: str | None, own: str | None, namespace: str
) -> None:
    written = Unit("x", "teams/a", namespace, policies_path=root, own_policies_path=own).settings
    assert settings_of(written, root) == (namespace, own)


def test_settings_that_do_not_read_so_give_nothing() -> None:
    for odd in ("", "path=a namespace=Bad policies=p deny=LOW", "path=a namespace=n policies=q+x deny=LOW"):
        assert settings_of(odd, "p") is None


def test_an_inventory_with_odd_values_reads_as_nothing_applied() -> None:
    """Whoever may write gitopsguard-system can put anything in an inventory's data: never a crash, never a
    huge string kept."""
    for data in ({"lastApplied": 5, "appliedAs": ["x"]}, {"lastApplied": "a" * 5000}, {"lastApplied": ""}, None, "x"):
        assert head_of({"metadata": {"name": "gitopsguard-inventory-u"}, "data": data}).last_applied is None
    assert head_of({"data": {"lastApplied": "abc", "appliedAs": 7}}) == Head("abc", "")
