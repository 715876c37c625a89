"""The source stage: fetch the tracked branch and hand the next stage a checkout at one commit.

The history followed may only move forward: a branch rewound or rewritten by a force-push is refused
unless the operator allows it for that fetch.
"""

from gitopsguard.source.git import Credentials, GitSource, Revision, SourceSpec

__all__ = ["Credentials", "GitSource", "Revision", "SourceSpec"]
