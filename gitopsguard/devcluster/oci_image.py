"""A one-layer OCI image archive made by hand from one static binary: no registry, no builder.

The pause image (the Pod sandbox) is made this way from the pause program built with the binaries. The
archive is an OCI image layout in a tar (``oci-layout``, ``index.json``, ``blobs/sha256/...``) whose index
names the image with ``io.containerd.image.name``, so ``ctr images import`` tags it as it imports it.
Everything is written deterministically: the same binary gives the same image digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.errors import DevClusterError

_OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


def write_single_binary_image(binary: Path, image: str, archive: Path, args: tuple[str, ...] = ()) -> str:
    """Write ``archive``: an image named ``image`` whose only file is ``/<binary name>``, its entrypoint.
    Returns the manifest digest."""
    try:
        content = binary.read_bytes()
    except OSError as error:
        raise DevClusterError(f"{binary}: cannot read it to make the image {image} ({error.strerror})") from error
    layer = Blob(LAYER_TYPE, _layer_tar(binary.name, content))
    config = Blob(CONFIG_TYPE, _json({
        "architecture": _OCI_ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": {"Entrypoint": [f"/{binary.name}"], "Cmd": list(args) or None, "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    }))  # fmt: skip
    manifest = Blob(MANIFEST_TYPE, _json({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": config.descriptor(), "layers": [layer.descriptor()],
    }))  # fmt: skip
    index = {"schemaVersion": 2, "manifests": [{**manifest.descriptor(), "annotations": {
        "io.containerd.image.name": image, "org.opencontainers.image.ref.name": image.rsplit(":", 1)[-1],
    }}]}  # fmt: skip
    files = {"oci-layout": _json({"imageLayoutVersion": "1.0.0"}), "index.json": _json(index)}
    files.update({f"blobs/sha256/{blob.digest.split(':', 1)[1]}": blob.data for blob in (layer, config, manifest)})
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(_tar(files))
    return manifest.digest


def _layer_tar(name: str, content: bytes) -> bytes:
    return _tar({name: content}, mode=0o755)


def _tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
