"""Defence in depth behind the confinement check: with remote bases off, kustomize runs with every git
transport refused and its HTTP(S) sent to a closed local port, so a URL form the check does not know (none
is known today; the check is bypassed here on purpose to stand in for one) still reads nothing remote."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.render import kustomize, render

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"


@pytest.fixture
def unchecked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout whose kustomizations reach kustomize unchecked, as an unknown bypass would."""
    monkeypatch.setattr(kustomize, "require_confined", lambda *_: None)
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "cm.yaml").write_text(CONFIGMAP)
    return tmp_path


def test_kustomize_cannot_fetch_a_file_over_https_the_check_missed(unchecked: Path) -> None:
    (unchecked / "apps" / "patch.yaml").write_text(
        "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: https://example.invalid/p.yaml\n"
    )
    (unchecked / "apps" / "kustomization.yaml").write_text("resources: [cm.yaml]\ntransformers: [patch.yaml]\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml: kustomize build failed: .*proxyconnect"):
        render(unchecked, "apps")


@pytest.mark.parametrize("base", ["https://example.invalid/org/repo", "git@example.invalid:org/repo"])
def test_kustomize_cannot_clone_a_remote_base_the_check_missed(unchecked: Path, base: str) -> None:
    (unchecked / "apps" / "kustomization.yaml").write_text(f"resources:\n- cm.yaml\n- {base}\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml: kustomize build failed: .*not allowed"):
        render(unchecked, "apps")


def test_kustomize_cannot_read_a_local_git_repository_through_file_url_the_check_missed(
    unchecked: Path, tmp_path: Path
) -> None:
    (unchecked / "apps" / "kustomization.yaml").write_text(f"resources:\n- cm.yaml\n- file://{tmp_path}\n")
    with pytest.raises(RenderError, match=r"transport 'file' not allowed"):
        render(unchecked, "apps")
