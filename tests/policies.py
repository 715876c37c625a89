"""Policy files that several live-scan tests and benches use."""

from __future__ import annotations


def team_label_policy(grace: str) -> str:
    """Deployments and Pods must carry a `team` label; the live scan deletes them after ``grace``."""
    return f"""\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {{name: team-label}}
spec:
  code: GG3001
  severity: HIGH
  match: {{kinds: [Deployment, Pod]}}
  builtin: {{name: required-labels, params: {{labels: [team]}}}}
  live: {{action: delete, gracePeriod: {grace}}}
"""


EVERY_ENV = (
    "object.spec.template.spec.containers.all(c, !has(c.env) || "
    "c.env.all(e, !e.name.contains('PASSWORD') || has(e.valueFrom)))"
)


def no_plain_passwords_policy(live: str = "") -> str:
    """A CEL rule that walks every env entry of every container (a tenant can make that list huge); with
    ``live`` (notify or delete) the live scan acts on it too."""
    policy = f"""\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {{name: no-plain-passwords}}
spec:
  code: GG3002
  severity: HIGH
  enforcement: enforce
  match: {{kinds: [Deployment]}}
  validations:
    - expression: "{EVERY_ENV}"
      message: passwords come from Secrets
"""
    return policy + (f"  live: {{action: {live}}}\n" if live else "")
