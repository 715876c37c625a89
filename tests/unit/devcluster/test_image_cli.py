"""`gitopsguard dev-cluster image` prints the archive's path (for the node's import) and nothing else on stdout;
a failure ends with an `error:` naming the step, what to do and the log's last lines, and exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitopsguard.cli import main
from gitopsguard.devcluster.base_image import ImageCache
from gitopsguard.devcluster.image import demo_web_image, gitopsguard_image
from tests.unit.devcluster.test_image_cache import cached_image, tools, write_base


@pytest.mark.parametrize("which", ["gitopsguard", "demo-web"])
def test_the_image_verb_prints_the_cached_archive_path(
    which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tools(tmp_path, monkeypatch)  # stand-ins that fail if run: a cached archive needs neither tool
    cache = ImageCache(tmp_path / "images")
    spec = gitopsguard_image() if which == "gitopsguard" else demo_web_image()
    archive = cached_image(tmp_path, cache, spec, write_base(cache))
    result = CliRunner().invoke(main, ["dev-cluster", "image", which, "--image-cache", str(cache.root)])
    assert (result.exit_code, result.stdout) == (0, f"{archive}\n"), result.output
    assert not calls.exists()


def test_a_failed_build_ends_with_an_error_naming_the_step_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools(tmp_path, monkeypatch, debootstrap='echo "E: Failed getting release file"; exit 1')
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    result = CliRunner().invoke(main, ["dev-cluster", "image", "--image-cache", str(tmp_path / "images")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "\nerror: debootstrap of Debian bookworm from http://deb.debian.org/debian: " in result.stderr
    assert "nothing was cached. Fix the cause and run it again" in result.stderr
    assert "Failed getting release file" in result.stderr
