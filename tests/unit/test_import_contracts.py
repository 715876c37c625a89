"""The pipeline's layers (docs/architecture.md) as import-linter contracts (pyproject.toml, run by `make lint`).

Each forbidden import below is what a change would bring that breaks one layer: it is added to a copy of the
package, and `lint-imports` must refuse the copy, naming the contract and the import. The real tree must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"  # installed with the test extras: pip install -e .[test]

# (module that gains the import, the import, the id of the contract it breaks)
FORBIDDEN = [
    ("policy/evaluate.py", "import gitopsguard.cluster.rest", "pure-stages"),
    ("plan/diff.py", "import subprocess", "pure-stages"),
    ("plan/prune.py", "import gitopsguard.policy.model", "stages"),
    ("render/plain.py", "import gitopsguard.source.git", "stages"),
    ("cluster/livecache.py", "import gitopsguard.plan.prepare", "api-edge"),
    ("cluster/reports.py", "import gitopsguard.policy", "api-edge"),
    ("notify/slack.py", "import gitopsguard.cluster.rest", "notify-consumes"),
    ("notify/notices.py", "import gitopsguard.grants.store", "notify-consumes"),  # indirect: the store reads it
    ("grants/load.py", "import gitopsguard.policy.load", "grants-apart"),
    ("model.py", "import gitopsguard.plan.prepare", "foundations"),
    ("errors.py", "import gitopsguard.cluster", "foundations"),
    ("documents/lines.py", "import gitopsguard.render.render", "documents-neutral"),
    ("scan/scanner.py", "import gitopsguard.controller", "composition"),
    ("controller.py", "import gitopsguard.commands.status", "composition-order"),
    ("units/order.py", "import gitopsguard.cluster.units", "units-pure"),
]


def contract_names() -> dict[str, str]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return {c["id"]: c["name"] for c in contracts}


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, not the installed package
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=tree, env=environment, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def copy_of_project(to: Path) -> Path:
    shutil.copytree(ROOT / "gitopsguard", to / "gitopsguard", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    return to


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_contract_is_exercised_by_a_forbidden_import() -> None:
    assert {contract for _, _, contract in FORBIDDEN} == set(contract_names())


@pytest.mark.parametrize(("module", "line", "contract"), FORBIDDEN, ids=[f"{m}:{i}" for m, i, _ in FORBIDDEN])
def test_a_forbidden_import_is_refused_by_lint_imports(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = copy_of_project(tmp_path)
    path = tree / "gitopsguard" / module
    path.write_text(f"{path.read_text()}\n{line}  # noqa: E402\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert f"{contract_names()[contract]} BROKEN" in result.stdout
    importer = "gitopsguard." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {line.split()[1]}" in broken


def test_make_lint_runs_lint_imports() -> None:
    lint_target = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/lint-imports" in lint_target
