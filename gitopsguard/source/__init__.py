"""The source stage: fetch the tracked branch and hand the next stage a checkout at one commit.

The history followed may only move forward: a branch rewound or rewritten by a force-push is refused
unless the operator allows it for that fetch. A repository URL is shown only as ``display_url`` shows it.
"""

from gitopsguard.source.git import Credentials, GitSource, Revision, SourceSpec
from gitopsguard.source.urls import display_url, redact_urls

__all__ = ["Credentials", "GitSource", "Revision", "SourceSpec", "display_url", "redact_urls"]
