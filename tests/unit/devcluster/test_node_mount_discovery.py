"""`down` finds every mount under the state directory, whatever its path, and none outside it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.devcluster.node_teardown import mounts_under

# how the kernel writes these four characters in a mountinfo path (octal escapes)
KERNEL_ESCAPES = {"\\": "\\134", " ": "\\040", "\t": "\\011", "\n": "\\012"}


def mountinfo_line(point: str) -> str:
    escaped = "".join(KERNEL_ESCAPES.get(char, char) for char in point)
    return f"36 35 98:0 / {escaped} rw,noatime master:1 - ext4 /dev/root rw"


def test_mounts_are_found_deepest_first_and_a_sibling_with_the_same_prefix_is_not_ours(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    lines = ["/", "/srv/state/node", "/srv/state/node/kubelet/pods/x/volumes/v", "/srv/state/node2", "/srv/statefile"]
    info.write_text("\n".join(mountinfo_line(line) for line in lines) + "\n")
    assert mounts_under(Path("/srv/state"), mountinfo=info) == [
        Path("/srv/state/node/kubelet/pods/x/volumes/v"),
        Path("/srv/state/node"),
        Path("/srv/state/node2"),
    ]
    assert Path("/srv/state/node2") not in mounts_under(Path("/srv/state/node"), mountinfo=info)


@given(st.text(alphabet=st.characters(exclude_characters="/\0", exclude_categories=["Cs"]), min_size=1, max_size=20))
@example("my volume")
@example("back\\040slash")  # a name that looks like an escape must not be unescaped twice
def test_mount_point_with_any_name_is_found_under_its_root(name: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        info = Path(scratch) / "mountinfo"
        info.write_text(mountinfo_line(f"/srv/state/{name}") + "\n")
        assert mounts_under(Path("/srv/state"), mountinfo=info) == [Path("/srv/state", name)]
