"""The health of one live object by kind (kstatus's rules, stricter where they are lenient), table-driven over
the YAML fixtures in tests/data/health: one file per kind, and hostile.yaml for status nobody should trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopsguard.plan.health import State, health_of

DATA = Path(__file__).parent.parent.parent / "data" / "health"


def _cases() -> list[Any]:
    cases = []
    for file in sorted(DATA.glob("*.yaml")):
        for case in yaml.safe_load(file.read_text()):
            cases.append(pytest.param(case["object"], State(case["state"]), case["reason"],
                                      id=f"{file.stem}: {case['case']}"))  # fmt: skip
    return cases


CASES = _cases()


def test_every_kind_with_a_rule_has_its_fixtures() -> None:
    files = {f.stem for f in DATA.glob("*.yaml")}
    assert {"deployment", "statefulset", "daemonset", "job", "other", "hostile"} <= files
    assert len(CASES) >= 50


@pytest.mark.parametrize(("body", "state", "reason"), CASES)
def test_each_fixture_gets_its_state_and_says_why(body: dict[str, Any], state: State, reason: str) -> None:
    health = health_of(body)
    assert health.state is state, health.reason
    assert reason in health.reason
