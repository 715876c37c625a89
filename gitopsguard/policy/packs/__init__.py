"""The built-in checks users enable by name, and the packs ``gitopsguard check --pack`` turns on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gitopsguard.policy.model import Check
from gitopsguard.policy.packs import magtape, pss, rbac_guard, required_labels


class BadParametersError(ValueError):
    """A built-in was given parameters it cannot use."""


def _no_params(check: Check) -> Callable[[Mapping[str, Any]], Check]:
    def make(params: Mapping[str, Any]) -> Check:
        if params:
            raise BadParametersError(f"takes no parameters, got {', '.join(sorted(params))}")
        return check

    return make


def _labels(params: Mapping[str, Any]) -> Check:
    labels = params.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise BadParametersError("needs `labels`: a non-empty list of label names")
    return required_labels.required_labels(tuple(labels))


def _pss(level: str) -> Callable[[Mapping[str, Any]], Check]:
    def make(params: Mapping[str, Any]) -> Check:
        if set(params) - {"version"}:
            raise BadParametersError(f"takes only version, got {', '.join(sorted(map(str, params)))}")
        try:
            return pss.pack(level, params.get("version", "latest"))
        except pss.BadVersionError as error:
            raise BadParametersError(f"{error}: the Kubernetes release whose Pod Security Standards to check") from None

    return make


def _rbac_guard(params: Mapping[str, Any]) -> Check:
    if set(params) - {"allowAggregationLabels"}:
        raise BadParametersError(f"takes only allowAggregationLabels, got {', '.join(sorted(map(str, params)))}")
    labels = params.get("allowAggregationLabels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise BadParametersError("`allowAggregationLabels` must be a list of label keys")
    return rbac_guard.rbac_guard_allowing(frozenset(labels))


BUILTINS: dict[str, Callable[[Mapping[str, Any]], Check]] = {
    "pss-baseline": _pss("baseline"),
    "pss-restricted": _pss("restricted"),
    "magtape": _no_params(magtape.magtape),
    "rbac-guard": _rbac_guard,
    "required-labels": _labels,
}
# Packs that need no parameters can be enabled from the command line alone.
PACKS = ("pss-baseline", "pss-restricted", "magtape", "rbac-guard")
