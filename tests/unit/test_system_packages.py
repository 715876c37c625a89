"""Missing system packages are found, installed as root, asked about otherwise, and explained when we can't."""

from __future__ import annotations

import pytest

from gitopsguard.devcluster.k8s_source import deb_src_entry
from gitopsguard.devcluster.system import missing_packages, plan_install
from gitopsguard.errors import BuildError, MissingDependencyError

DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_missing_packages_names_the_debian_package_of_each_absent_command() -> None:
    present = {"git": "/usr/bin/git"}
    missing = missing_packages({"git": "git", "etcd": "etcd-server", "go": "golang-go"}, which=present.get)
    assert missing == ["etcd-server", "golang-go"]


def test_nothing_is_missing_when_every_command_is_on_path() -> None:
    assert missing_packages({"sh": "dash"}) == []


def test_root_installs_with_apt_directly() -> None:
    plan = plan_install(["etcd-server"], is_root=True, has_sudo=False)
    assert plan.commands[0] == ("apt-get", "update", "-q")
    assert plan.commands[1][-1] == "etcd-server"
    assert "sudo" not in plan.describe()


def test_non_root_installs_through_sudo() -> None:
    plan = plan_install(["jq", "rsync"], is_root=False, has_sudo=True)
    assert all(command[0] == "sudo" for command in plan.commands)


def test_non_root_without_sudo_is_told_what_to_ask_an_administrator() -> None:
    with pytest.raises(MissingDependencyError, match=r"apt-get install -y golang-go"):
        plan_install(["golang-go"], is_root=False, has_sudo=False)


def test_deb_src_entry_points_at_the_mirror_of_the_existing_deb_entry() -> None:
    entry = deb_src_entry(DEBIAN_SOURCES)
    assert "Types: deb-src" in entry
    assert "URIs: http://mirror.example/debian\n" in entry
    assert "Suites: bookworm bookworm-updates" in entry
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in entry


def test_deb_src_entry_without_a_bookworm_deb_entry_says_what_to_do() -> None:
    with pytest.raises(BuildError, match="add a deb-src line"):
        deb_src_entry("Types: deb\nURIs: http://x\nSuites: jammy\n")
