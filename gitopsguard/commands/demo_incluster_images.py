"""The demo's two images into the node while the cluster starts (``demo_incluster.py``).

Importing gitopsguard's image (about 190 MB) and the web image into containerd took about 20 s, and the kubelet
took about as long to report its Node Ready; one after the other they were a third of a warm install. Only
containerd has to run for an import, and it starts seconds before the kubelet: so the images are built (or found
in the cache) from the start, and imported as soon as containerd answers, while the kubelet comes up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster import node_components as nc
from gitopsguard.devcluster.base_image import ImageCache
from gitopsguard.devcluster.image import build, demo_web_image, gitopsguard_image
from gitopsguard.devcluster.node import import_image
from gitopsguard.devcluster.progress import Progress
from gitopsguard.errors import DevClusterError

CONTAINERD_WITHIN = 300.0  # seconds: the cluster's own start gives each component 120 s, containerd comes fourth


class NodeImages:
    """Builds and imports in a thread of its own; ``wait`` returns once both images are in the node's
    containerd, or raises what went wrong there. ``abandon`` (the cluster did not come up) ends the wait for
    containerd at once; a build already under way still finishes, so that its cache entry is complete."""

    def __init__(
        self, state: StateLayout, progress: Progress, *, ready: Callable[[StateLayout], bool] = nc.containerd_ready,
        images: Callable[[Progress], list[tuple[str, Path]]] | None = None,
    ) -> None:  # fmt: skip
        self._state, self._progress, self._ready = state, progress, ready
        self._images = images or demo_images
        self._abandoned = threading.Event()
        self._error: BaseException | None = None
        self.imported: dict[str, str] = {}  # the fingerprint of each image imported, by the name a Pod gives it
        self._thread = threading.Thread(target=self._run, name="demo-images", daemon=True)

    def start(self) -> NodeImages:
        self._thread.start()
        return self

    def abandon(self) -> None:
        self._abandoned.set()
        self._thread.join()

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            built = self._images(self._progress)
            self._wait_for_containerd()
            # side by side: each import is mostly one core decompressing its layers
            with ThreadPoolExecutor(max_workers=len(built) or 1, thread_name_prefix="demo-import") as imports:
                list(imports.map(self._import, built))  # list(): the first failure is raised here
        except Exception as error:  # any failure, a bug too, must reach `wait`: no Pod runs without its image
            self._error = error

    def _import(self, image: tuple[str, Path]) -> None:
        name, archive = image
        self._progress.stage(f"importing {name} into the node's containerd")
        import_image(archive, self._state)
        self.imported[name] = fingerprint(archive)
        self._progress.detail(f"{name} imported")

    def _wait_for_containerd(self) -> None:
        deadline = time.monotonic() + CONTAINERD_WITHIN
        while not self._ready(self._state):
            if self._abandoned.wait(0.2):
                raise DevClusterError(f"{self._state.root}: the cluster did not come up; no image was imported")
            if time.monotonic() > deadline:
                log = self._state.log_file(nc.CONTAINERD)
                raise DevClusterError(f"{self._state.node.containerd_socket}: containerd not answering after "
                                      f"{CONTAINERD_WITHIN:.0f} s; see {log}")  # fmt: skip


def fingerprint(archive: Path) -> str:
    """What tells one build of an image archive from another: a build writes a new file (its size and
    modification time; reading 190 MB for a digest would cost a warm demo a second)."""
    found = archive.stat()
    return f"{found.st_size}-{found.st_mtime_ns}"


def demo_images(progress: Progress) -> list[tuple[str, Path]]:
    """(name, archive) of gitopsguard's image and the demo's web image, built unless cached."""
    cache = ImageCache.default()
    specs = (gitopsguard_image(), demo_web_image())
    return [(spec.short_name, build(spec, cache, progress, confirm=lambda _: True).archive) for spec in specs]
