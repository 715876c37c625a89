"""A Unit that waits for a Unit of another namespace learns that it is not Ready and the reason, never its message.

``dependsOn`` may name a Unit of another namespace (the platform's ``infra``, another team's ``db``), and the
dependent's status (readable by the team that owns the dependent's namespace) said why it waits: the
dependency's whole Ready message, copied. That message names the dependency's objects and carries what the
API server and controllers said about them (a dry run's refusal, a Deployment's condition messages, a render
error naming files): another namespace's state, which a tenant may not read. Flux's Kustomization says only
that the dependency is not ready. In the same namespace the message is the team's own, and it is kept."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.units import Readiness, UnitRef, UnitSpec, blocked

INFRA, APPS, DB = UnitRef("platform", "infra"), UnitRef("team-a", "apps"), UnitRef("team-a", "db")
SECRETIVE = "Deployment/platform/ingress: 0 of 2 replicas available: image pull secret platform/regcred not found"


def spec(ref: UnitRef, *needs: UnitRef) -> UnitSpec:
    return UnitSpec(ref, f"units/{ref.name}.yaml:1", f"teams/{ref.name}", timedelta(minutes=5), depends_on=needs)


@given(message=st.text(min_size=1, max_size=200))
@example(message=SECRETIVE)
@example(message="x")
def test_a_dependency_in_another_namespace_gives_its_reason_and_never_its_message(message: str) -> None:
    waiting = blocked([spec(APPS, INFRA)], {INFRA: Readiness(False, "HealthCheckFailed", message)})[APPS]
    assert waiting == "waiting for Unit/platform/infra: not Ready: HealthCheckFailed", waiting


def test_a_dependency_in_the_same_namespace_gives_its_message() -> None:
    waiting = blocked([spec(APPS, DB)], {DB: Readiness(False, "BuildFailed", "teams/db/x.yaml:3: not valid YAML")})
    assert waiting == {APPS: "waiting for Unit/team-a/db: not Ready: BuildFailed: teams/db/x.yaml:3: not valid YAML"}
