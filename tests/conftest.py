"""Settings shared by every test session.

Property and fuzz tests use hypothesis with a fixed budget, so that CI's run time is bounded: the
``ci`` profile (the default) tries a fixed number of examples per test with a per-example deadline (10 s:
an example slower than that is a hang, not a slow machine). pyproject.toml fixes the seed
(``--hypothesis-seed``), so every machine tries the same examples and a red run is reproducible;
``GITOPSGUARD_FUZZ=deep`` with another seed runs many more for a local hunt and saves every failing example
it finds in ``tests/fuzz/seeds`` (hypothesis's example database). That folder lives in the repository; CI replays it
first, read-only. Inputs that once broke gitopsguard are also pinned with ``@example`` beside their test.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

_SEEDS = DirectoryBasedExampleDatabase(str(Path(__file__).parent / "fuzz" / "seeds"))

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=10_000,
    database=ReadOnlyDatabase(_SEEDS),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deep", max_examples=5000, deadline=None, database=_SEEDS)
settings.load_profile(os.environ.get("GITOPSGUARD_FUZZ", "ci"))
