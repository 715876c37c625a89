"""What reading one set of YAML files may cost. Files from a commit are hostile input: these bounds are what a
contributor can make the controller spend (memory, time) and which files they can make it read."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 2**20


@dataclass(frozen=True, kw_only=True)
class ReadLimits:
    """Limits of one read (a render, the policies/ or access/ folder); every one is refused with the file (and
    line) that passed it, before it is spent. ``render.RenderSettings`` adds kustomize's own.

    The defaults keep a read of plain YAML under ~300 MB of memory: a file costs about 30 times its size once
    parsed, and only ``max_file_bytes`` of text is ever parsed at once.
    """

    max_file_bytes: int = 4 * MiB  # one YAML file (or policy file), checked before it is read
    max_total_bytes: int = 32 * MiB  # all files of a render together, and kustomize's output
    max_documents: int = 20_000  # objects in one render, the items of Lists included
    max_nodes: int = 1_000_000  # YAML nodes parsed in one render, each alias counted as the nodes it repeats
    max_document_nodes: int = 200_000  # YAML nodes in one document (the parser holds them all at once)
    max_depth: int = 100  # nesting of mappings and lists in one document
    max_folder_depth: int = 64  # folders below the rendered path


LIMITS = ReadLimits()
