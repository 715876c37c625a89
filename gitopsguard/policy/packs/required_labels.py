"""required-labels: every matched object carries the labels the policy names (the policy terminator's
first use case)."""

from __future__ import annotations

from collections.abc import Sequence

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Check, Context, Hit


def required_labels(labels: Sequence[str]) -> Check:
    def check(body: KubeObject, _ctx: Context) -> list[Hit]:
        present = (body.get("metadata") or {}).get("labels") or {}
        missing = [name for name in labels if not present.get(name)]
        if not missing:
            return []
        return [
            Hit(
                "",
                f"missing required labels: {', '.join(missing)}",
                "metadata.labels",
                fix=f"add the labels {', '.join(missing)} to metadata.labels",
            )
        ]

    return check
