"""Admission webhooks on the one evaluator: the validating and mutating webhooks judge what enters the
cluster outside Git with the policies of the revision the controller last applied."""

from gitopsguard.admission.request import AdmissionRequest, BadReviewError, parse_review
from gitopsguard.admission.review import Judgement, PodSecurity, Verdict, mutate_request, refusal, response, validate

__all__ = [
    "AdmissionRequest",
    "BadReviewError",
    "Judgement",
    "PodSecurity",
    "Verdict",
    "mutate_request",
    "parse_review",
    "refusal",
    "response",
    "validate",
]
