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
