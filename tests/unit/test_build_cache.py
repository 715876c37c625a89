"""The binary cache never holds a half-written or wrong binary, whatever happens during the build."""

from __future__ import annotations

import json
import platform
import textwrap
from pathlib import Path

import pytest

from gitopsguard.devcluster.build import _use_fixed_reflect2, build_into_cache, cached_binaries_valid
from gitopsguard.devcluster.paths import CONTROL_PLANE_BINARIES, CacheLayout
from gitopsguard.devcluster.progress import SilentProgress
from gitopsguard.errors import BuildError

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
OUT = f"_output/local/bin/linux/{ARCH}"


def fake_binary(version: str) -> str:
    return f"#!/bin/sh\\necho 'Kubernetes {version}'\\n"


def make_tree(tmp_path: Path, recipe: str) -> Path:
    """A source tree whose Makefile stands in for Kubernetes' (a real make runs it)."""
    tree = tmp_path / "kubernetes-1.20.2"
    tree.mkdir()
    (tree / "Makefile").write_text(textwrap.dedent(recipe).replace("    ", "\t"))
    pause = tree / "build" / "pause" / "linux" / "pause.c"
    pause.parent.mkdir(parents=True)
    pause.write_text(PAUSE_C)
    return tree


# What matters of build/pause/linux/pause.c: it prints its VERSION for -v (the build checks it).
PAUSE_C = """#include <stdio.h>
#define STRINGIFY(x) #x
#define VERSION_STRING(x) STRINGIFY(x)
int main(int argc, char **argv) { if (argc > 1) printf("pause.c %s\\n", VERSION_STRING(VERSION)); return 0; }
"""


def succeeding_recipe(version: str = "v1.20.2") -> str:
    lines = [f"all:\n    mkdir -p {OUT}"]
    for name in CONTROL_PLANE_BINARIES:
        lines.append(f'    printf "{fake_binary(version)}" > {OUT}/{name}\n    chmod +x {OUT}/{name}')
    return "\n".join(lines) + "\n"


def test_failed_build_leaves_no_binary_in_cache(tmp_path: Path) -> None:
    # make writes a partial kube-apiserver, then fails before kube-controller-manager.
    tree = make_tree(
        tmp_path,
        f"""
        all:
            mkdir -p {OUT}
            printf 'partial' > {OUT}/kube-apiserver
            exit 2
        """,
    )
    cache = CacheLayout(tmp_path / "cache")
    with pytest.raises(BuildError, match="make exited 2"):
        build_into_cache(tree, cache, SilentProgress())
    assert not cache.binary("kube-apiserver").exists()
    assert not cached_binaries_valid(cache)
    assert list(cache.root.rglob(".staging-*")) == []


def test_failed_build_error_shows_the_end_of_the_build_log(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, "all:\n    @echo 'vendor/foo.go:12: undefined: Bar'\n    exit 1\n")
    with pytest.raises(BuildError, match="undefined: Bar"):
        build_into_cache(tree, CacheLayout(tmp_path / "cache"), SilentProgress())


def test_successful_build_is_cached_with_a_manifest(tmp_path: Path) -> None:
    cache = CacheLayout(tmp_path / "cache")
    build_into_cache(make_tree(tmp_path, succeeding_recipe()), cache, SilentProgress())
    assert cached_binaries_valid(cache)
    manifest = json.loads(cache.manifest.read_text())
    assert set(manifest["binaries"]) == {*CONTROL_PLANE_BINARIES, "pause"}
    assert manifest["binaries"]["pause"]["version"] == "pause.c v3.4-gitopsguard"
    assert manifest["binaries"]["kube-apiserver"]["version"] == "Kubernetes v1.20.2"


def test_binary_of_the_wrong_version_is_refused_and_not_cached(tmp_path: Path) -> None:
    cache = CacheLayout(tmp_path / "cache")
    with pytest.raises(BuildError, match=r"expected Kubernetes v1\.20\.2"):
        build_into_cache(make_tree(tmp_path, succeeding_recipe("v1.19.0")), cache, SilentProgress())
    assert not cache.bin_dir.exists()
    assert list(cache.root.rglob(".staging-*")) == []


def test_truncated_cached_binary_makes_the_cache_invalid(tmp_path: Path) -> None:
    cache = CacheLayout(tmp_path / "cache")
    build_into_cache(make_tree(tmp_path, succeeding_recipe()), cache, SilentProgress())
    cache.binary("kube-controller-manager").write_bytes(b"#!/bin/sh\n")
    assert not cached_binaries_valid(cache)


def test_binaries_without_manifest_are_not_a_valid_cache(tmp_path: Path) -> None:
    cache = CacheLayout(tmp_path / "cache")
    build_into_cache(make_tree(tmp_path, succeeding_recipe()), cache, SilentProgress())
    cache.manifest.unlink()
    assert not cached_binaries_valid(cache)


def test_rebuild_replaces_an_invalid_cache(tmp_path: Path) -> None:
    cache = CacheLayout(tmp_path / "cache")
    cache.bin_dir.mkdir(parents=True)
    cache.binary("kube-apiserver").write_text("left over from a killed copy")
    build_into_cache(make_tree(tmp_path, succeeding_recipe()), cache, SilentProgress())
    assert cached_binaries_valid(cache)
    assert "Kubernetes v1.20.2" in cache.binary("kube-apiserver").read_text()


def test_cache_from_a_build_without_the_reflect2_fix_is_not_valid(tmp_path: Path) -> None:
    cache = CacheLayout(tmp_path / "cache")
    build_into_cache(make_tree(tmp_path, succeeding_recipe()), cache, SilentProgress())
    manifest = json.loads(cache.manifest.read_text())
    del manifest["build"]
    cache.manifest.write_text(json.dumps(manifest))
    assert not cached_binaries_valid(cache)


def test_vendored_reflect2_is_replaced_by_the_fixed_release(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, succeeding_recipe())
    vendored = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    vendored.mkdir(parents=True)
    (vendored / "go_above_17.go").write_text("package reflect2 // v1.0.1")
    (vendored / "LICENSE").write_text("kept")
    fixed = tmp_path / "debian-reflect2"
    fixed.mkdir()
    (fixed / "go_above_118.go").write_text("package reflect2 // v1.0.2")
    (fixed / "reflect2_test.go").write_text("package reflect2")
    (fixed / "go.mod").write_text("module github.com/modern-go/reflect2")
    _use_fixed_reflect2(tree, SilentProgress(), fixed)
    assert sorted(p.name for p in vendored.iterdir()) == ["LICENSE", "go_above_118.go"]


def test_cache_from_before_the_node_is_not_valid(tmp_path: Path) -> None:
    # A cache made when only kube-apiserver and kube-controller-manager were built: `up` must rebuild it.
    cache = CacheLayout(tmp_path / "cache")
    build_into_cache(make_tree(tmp_path, succeeding_recipe()), cache, SilentProgress())
    manifest = json.loads(cache.manifest.read_text())
    manifest["binaries"] = {name: manifest["binaries"][name] for name in ("kube-apiserver", "kube-controller-manager")}
    cache.manifest.write_text(json.dumps(manifest))
    assert not cached_binaries_valid(cache)


def test_node_binaries_and_pause_are_built_in_the_same_cache(tmp_path: Path) -> None:
    cache = CacheLayout(tmp_path / "cache")
    build_into_cache(make_tree(tmp_path, succeeding_recipe()), cache, SilentProgress())
    for name in ("kubelet", "kube-scheduler", "kube-proxy", "pause"):
        assert cache.binary(name).is_file()


def test_pause_that_does_not_compile_leaves_no_cache(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, succeeding_recipe())
    (tree / "build" / "pause" / "linux" / "pause.c").write_text("int main( {")
    cache = CacheLayout(tmp_path / "cache")
    with pytest.raises(BuildError, match=r"pause\.c: `gcc -static` failed"):
        build_into_cache(tree, cache, SilentProgress())
    assert not cache.bin_dir.exists()
