"""Escalation policies are privileged: a change to one takes effect only once an administrator named in the
trust file has signed the first-parent commit that made it (their signed merge of the change, or their own
signed commit). Until then the version of the last such commit stays in force; a policy file no
administrator ever approved does not exist. Content is read from git objects, never from the checkout, so
what is in force is exactly what was approved.
"""

from __future__ import annotations

from collections.abc import Callable

from gitopsguard.errors import PolicyError
from gitopsguard.evidence.history import REGULAR_MODES, History
from gitopsguard.grants.load import MAX_FILE_BYTES, POLICY_DIR, FileText

Approver = Callable[[str, str], bool]  # is this commit (commit, path) an administrator's approval of the file?


def approved_policy_files(history: History, by_admin: Approver) -> list[FileText]:
    """(path, the text an administrator approved last) for each policy file at the head that has one."""
    found: list[FileText] = []
    for path in history.files("HEAD", POLICY_DIR):
        if not path.endswith((".yaml", ".yml")):
            continue
        commit, blob = _last_approved(history, path, by_admin)
        if not blob:
            continue  # never approved by an administrator (or approved as deleted): not in force
        mode = history.entry(commit, path).mode
        if mode not in REGULAR_MODES:
            found.append((path, PolicyError(f"{path}: is not a regular file in {commit[:12]}; policies are "
                                            "read only from regular files")))  # fmt: skip
            continue
        found.append((path, _text(history, path, blob)))
    return found


def _last_approved(history: History, path: str, by_admin: Approver) -> tuple[str, str]:
    """(commit, blob) of the newest first-parent commit that changed ``path`` and is an administrator's;
    ("", "") when there is none."""
    chain = history.first_parents("HEAD")
    blobs = [*history.blobs(chain, path), ""]  # the root commit's parent holds nothing
    for index, commit in enumerate(chain):
        if blobs[index] != blobs[index + 1] and by_admin(commit, path):
            return commit, blobs[index]
    return "", ""


def _text(history: History, path: str, blob: str) -> str | PolicyError:
    size = int(history.object_size(blob))
    if size > MAX_FILE_BYTES:
        return PolicyError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} a policy needs")
    return history.object_text(blob)
