"""The policy stage (pure): mutate, then validate rendered or live objects against the repository's
policies and exceptions. One evaluator serves the offline check, the apply gate and the live scan."""

from gitopsguard.policy.evaluate import Evaluation, ObjectResult, evaluate, findings, judge_object
from gitopsguard.policy.load import load_policies, pack_policy, parse_policies
from gitopsguard.policy.model import DenyLevel, Finding, Policy, PolicySet, Severity

__all__ = [
    "DenyLevel",
    "Evaluation",
    "Finding",
    "ObjectResult",
    "Policy",
    "PolicySet",
    "Severity",
    "evaluate",
    "findings",
    "judge_object",
    "load_policies",
    "pack_policy",
    "parse_policies",
]
