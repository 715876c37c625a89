"""What a commit can cost is bounded: YAML that expands (aliases), big files, many documents, deep nesting and
kustomize builds that run long or write much are refused with the file (and line), before memory runs out."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.documents.yamlload import documents
from gitopsguard.errors import PolicyError, RenderError
from gitopsguard.policy import load_policies
from gitopsguard.render import render
from gitopsguard.render.settings import RenderSettings

REPO_ROOT = Path(__file__).parents[2]

LAUGHS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: lol, namespace: shop}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

# Runs a command of gitopsguard in a child whose address space is capped, and prints its exit code, output,
# peak RSS (kB) and time, so a test can see what one commit costs without risking the test process.
_LIMITED = """
import contextlib, io, json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from gitopsguard.cli import main
out = io.StringIO()
start = time.monotonic()
code = 0
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    try:
        main({args!r}, standalone_mode=False)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:
        code, _ = 99, print(type(e).__name__, e)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so a child started from a big pytest process
# would report the parent's peak; VmHWM belongs to this process's own memory map.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"code": code, "output": out.getvalue()[-2000:], "seconds": time.monotonic() - start,
                  "rss_kb": hwm}}))
"""


def run_limited(args: list[str], cwd: Path, limit: int = 512 * 2**20) -> dict[str, Any]:
    """``gitopsguard ARGS`` in a child process under an address-space limit; its result as a dict."""
    code = _LIMITED.format(limit=limit, args=args)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_billion_laughs_is_refused_by_check_with_file_and_line_under_512_mib(tmp_path: Path) -> None:
    write(tmp_path, "apps/laughs.yaml", LAUGHS)
    result = run_limited(["check", "apps"], tmp_path)
    assert result["code"] == 2, result
    assert str(result["output"]).removeprefix("error: ").startswith("apps/laughs.yaml:"), result
    assert "alias" in str(result["output"]), result


def test_billion_laughs_in_a_policy_file_is_refused_with_file_and_line_under_512_mib(tmp_path: Path) -> None:
    write(tmp_path, "apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n")
    levels = "".join(
        f"      {n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    policy = (
        "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: lol}\nspec:\n  mutate:\n"
        "    addLabels:\n      a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + levels
    )
    write(tmp_path, "policies/laughs.yaml", policy)
    result = run_limited(["check", "apps", "--policies", "policies"], tmp_path)
    assert result["code"] == 2, result
    assert str(result["output"]).removeprefix("error: ").startswith("policies/laughs.yaml:"), result
    assert "alias" in str(result["output"]), result


def _aliased(width: int, depth: int) -> str:
    """A document whose last level expands to ``width ** depth`` scalars through aliases."""
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, depth)]
    return "\n".join(lines) + "\n"


def _expanded(width: int, depth: int) -> int:
    """Nodes in the document of ``_aliased`` once every alias is expanded (keys, lists and scalars)."""
    total, level = 1, 1 + width  # the top mapping; level 0 is a list of width scalars
    for _ in range(depth):
        total += 1 + level  # the key, and the level's list as expanded
        level = 1 + width * level
    return total


@given(width=st.integers(1, 12), depth=st.integers(1, 9))
def test_alias_expansion_past_the_node_cap_is_refused_and_below_it_loads(width: int, depth: int) -> None:
    settings = RenderSettings(max_nodes=5_000)
    text = _aliased(width, depth)
    if _expanded(width, depth) > settings.max_nodes:
        with pytest.raises(yaml.MarkedYAMLError, match="alias"):
            list(documents(text, settings=settings))
    else:
        assert len(list(documents(text, settings=settings))) == 1


def test_a_file_over_the_size_cap_is_refused_within_10s_without_rss_passing_300_mb(tmp_path: Path) -> None:
    item = "- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm-%d, namespace: shop}, data: {k: v}}\n"
    body = "apiVersion: v1\nkind: List\nitems:\n" + "".join(item % n for n in range(130_000))
    assert len(body) > 10_000_000
    write(tmp_path, "apps/big.yaml", body)
    result = run_limited(["check", "apps"], tmp_path, limit=2 * 2**30)
    assert result["code"] == 2, result
    assert str(result["output"]).removeprefix("error: ").startswith("apps/big.yaml: "), result
    assert float(result["seconds"]) < 10, result
    assert int(result["rss_kb"]) < 300_000, result


def test_files_together_over_the_total_cap_are_refused_naming_the_file_that_passed_it(tmp_path: Path) -> None:
    settings = RenderSettings(max_file_bytes=4_000, max_total_bytes=10_000)
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: shop}\ndata: {k: '%s'}\n"
    for n in range(4):
        write(tmp_path, f"apps/f{n}.yaml", text % (n, "x" * 3_000))
    with pytest.raises(RenderError, match=r"^apps/f3\.yaml: .*10000 bytes"):
        render(tmp_path, "apps", settings=settings)


def test_more_documents_than_the_cap_are_refused_with_file_and_line(tmp_path: Path) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: shop}\n"
    write(tmp_path, "apps/many.yaml", "---\n".join(doc % n for n in range(50)))
    with pytest.raises(RenderError, match=r"^apps/many\.yaml:\d+: .*more than 20 documents"):
        render(tmp_path, "apps", settings=RenderSettings(max_documents=20))


def test_a_list_with_more_items_than_the_document_cap_is_refused(tmp_path: Path) -> None:
    item = "- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm-%d}}\n"
    write(tmp_path, "apps/list.yaml", "apiVersion: v1\nkind: List\nitems:\n" + "".join(item % n for n in range(30)))
    with pytest.raises(RenderError, match=r"^apps/list\.yaml:1: .*more than 20"):
        render(tmp_path, "apps", settings=RenderSettings(max_documents=20))


def test_nesting_deeper_than_the_cap_is_refused_with_file_and_line(tmp_path: Path) -> None:
    deep = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: " + "[" * 150 + "]" * 150 + "\n"
    write(tmp_path, "apps/deep.yaml", deep)
    with pytest.raises(RenderError, match=r"^apps/deep\.yaml:\d+: .*deeper than 100"):
        render(tmp_path, "apps")


def test_policy_nesting_deeper_than_the_cap_is_refused_with_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path, "policies/deep.yaml", "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nx: " + "[" * 400 + "]" * 400
    )
    with pytest.raises(PolicyError, match=r"^policies/deep\.yaml:\d+: "):
        load_policies(tmp_path / "policies", root=tmp_path)


FAN_OUT_LEAF = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaf}\ndata: {k: v}\n"


def fan_out(root: Path, levels: int) -> None:
    """A kustomization that includes the next level twice under two name prefixes, ``levels`` deep: a few
    dozen small files that ask kustomize for 2 ** levels objects."""
    write(root, f"l{levels}/leaf.yaml", FAN_OUT_LEAF)
    write(root, f"l{levels}/kustomization.yaml", "resources: [leaf.yaml]\n")
    for level in range(levels - 1, -1, -1):
        for side in "ab":
            write(
                root, f"l{level}/{side}/kustomization.yaml", f"namePrefix: {side}-\nresources: [../../l{level + 1}]\n"
            )
        write(root, f"l{level}/kustomization.yaml", "resources: [a, b]\n")


def test_a_kustomize_fan_out_is_stopped_at_the_time_limit_naming_the_kustomization(tmp_path: Path) -> None:
    fan_out(tmp_path, 16)
    start = time.monotonic()
    with pytest.raises(RenderError, match=r"^l0/kustomization\.yaml: kustomize build did not finish in 2s"):
        render(tmp_path, "l0", settings=RenderSettings(kustomize_timeout=2))
    assert time.monotonic() - start < 6


def test_kustomize_output_over_the_total_cap_is_refused_naming_the_kustomization(tmp_path: Path) -> None:
    fan_out(tmp_path, 6)  # 64 ConfigMaps, about 6 kB of output
    with pytest.raises(RenderError, match=r"^l0/kustomization\.yaml: kustomize wrote more than 2000 bytes"):
        render(tmp_path, "l0", settings=RenderSettings(max_total_bytes=2_000))


def test_kustomize_over_its_memory_limit_is_a_render_error_naming_the_kustomization(tmp_path: Path) -> None:
    fan_out(tmp_path, 2)
    with pytest.raises(RenderError, match=r"^l0/kustomization\.yaml: kustomize build failed"):
        render(tmp_path, "l0", settings=RenderSettings(kustomize_memory=64 * 2**20))


def test_kustomize_within_its_limits_renders_as_before(tmp_path: Path) -> None:
    fan_out(tmp_path, 3)
    rendered = render(tmp_path, "l0", settings=RenderSettings(kustomize_timeout=20))
    assert len(rendered.manifests) == 8


def test_kustomize_is_told_to_load_files_from_its_root_only() -> None:
    from gitopsguard.render.kustomize import kustomize_arguments

    assert "--load-restrictor=LoadRestrictionsRootOnly" in kustomize_arguments(Path("/x"))


def test_check_of_a_single_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        "big.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: '" + "x" * 5_000_000 + "'}\n",
    )
    result = run_limited(["check", "big.yaml"], tmp_path)
    assert result["code"] == 2, result
    assert str(result["output"]).removeprefix("error: ").startswith("big.yaml: more than the 4194304 bytes"), result


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_a_document_with_more_nodes_than_the_cap_is_refused_with_its_line(tmp_path: Path, flow: bool) -> None:
    items = "[" + ", ".join(["{a: 1}"] * 400) + "]" if flow else "".join("\n  - a: 1" for _ in range(400))
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
    write(tmp_path, "apps/dense.yaml", head + "---\n" + head + "data:\n  k: " + items + "\n")
    with pytest.raises(
        RenderError, match=r"^apps/dense\.yaml:\d+: the document this line is in has more than 500 YAML nodes"
    ):
        render(tmp_path, "apps", settings=RenderSettings(max_document_nodes=500))
    write(tmp_path, "apps/dense.yaml", head + "data:\n  k: " + items.replace("400", "1") + "\n")
    assert len(render(tmp_path, "apps", settings=RenderSettings(max_document_nodes=2_000)).manifests) == 1


def test_the_bounded_loader_for_grants_and_trust_refuses_big_files_symlinks_and_aliases_naming_the_file(
    tmp_path: Path,
) -> None:
    from gitopsguard.documents.yamlload import load_bounded

    grant = write(tmp_path, "access/grants/g.yaml", "kind: Grant\nwhen: 2026-01-01\n")
    assert load_bounded(grant, PolicyError, shown="access/grants/g.yaml") == [
        (1, {"kind": "Grant", "when": "2026-01-01"})
    ]
    write(tmp_path, "access/grants/big.yaml", "x: '" + "y" * 5_000 + "'\n")
    with pytest.raises(PolicyError, match=r"^access/grants/big\.yaml: more than the 4000 bytes"):
        load_bounded(tmp_path / "access/grants/big.yaml", PolicyError, shown="access/grants/big.yaml",
                     settings=RenderSettings(max_file_bytes=4_000))  # fmt: skip
    (tmp_path / "trust.yaml").symlink_to(grant)
    with pytest.raises(PolicyError, match=r"^trust\.yaml: is a symlink"):
        load_bounded(tmp_path / "trust.yaml", PolicyError, shown="trust.yaml")
    write(tmp_path, "laughs.yaml", LAUGHS)
    with pytest.raises(PolicyError, match=r"^laughs\.yaml:\d+: the YAML here expands to more than"):
        load_bounded(tmp_path / "laughs.yaml", PolicyError, shown="laughs.yaml")
