"""A one-layer OCI image made by hand holds exactly the binary, is consistent by digest, and is reproducible."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from gitopsguard.devcluster.oci_image import write_single_binary_image
from gitopsguard.errors import DevClusterError


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def blob(files: dict[str, bytes], digest: str) -> bytes:
    data = files[f"blobs/sha256/{digest.removeprefix('sha256:')}"]
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest, "a blob must match the digest naming it"
    return data


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "pause"
    path.write_bytes(b"\x7fELF not really, but bytes all the same")
    return path


def test_image_index_names_the_image_and_every_blob_matches_its_digest(binary: Path, tmp_path: Path) -> None:
    archive = tmp_path / "pause.tar"
    digest = write_single_binary_image(binary, "localhost/gitopsguard/pause:3.4", archive)
    files = members(archive.read_bytes())
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["digest"] == digest
    assert entry["annotations"]["io.containerd.image.name"] == "localhost/gitopsguard/pause:3.4"
    manifest = json.loads(blob(files, digest))
    config = json.loads(blob(files, manifest["config"]["digest"]))
    (layer_ref,) = manifest["layers"]
    layer = blob(files, layer_ref["digest"])
    assert config["rootfs"]["diff_ids"] == [layer_ref["digest"]]  # uncompressed layer: diff id = digest
    assert config["config"]["Entrypoint"] == ["/pause"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        (only,) = tar.getmembers()
        assert (only.name, only.mode, only.uid) == ("pause", 0o755, 0)
        assert tar.extractfile(only).read() == binary.read_bytes()  # type: ignore[union-attr]


def test_same_binary_gives_the_same_image_digest(binary: Path, tmp_path: Path) -> None:
    first = write_single_binary_image(binary, "localhost/x:1", tmp_path / "a.tar")
    second = write_single_binary_image(binary, "localhost/x:1", tmp_path / "b.tar")
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_missing_binary_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(DevClusterError, match=r"nope: cannot read it to make the image localhost/x:1"):
        write_single_binary_image(tmp_path / "nope", "localhost/x:1", tmp_path / "x.tar")
