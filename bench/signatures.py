"""Issue 20's signature numbers: who signed each of 1,000+ new commits, in-process against git's path alone.

    PYTHONPATH=$PWD .venv/bin/python bench/signatures.py [--merges 100] [--commits 10] [--rounds 3] [--keep DIR]

Builds a real repository: ``--merges`` merges (``git merge --no-ff -S`` by one of two approvers) of
``--commits`` commits each (``git commit -S`` by one of five authors), every key an ed25519 key made by
ssh-keygen; 100 x 10 gives 1,100 signed commits, which takes a while to build (progress is printed; ``--keep
DIR`` builds once into DIR and reuses it). Then, each round with a fresh ``Signatures`` (nothing cached):

  * ``Signatures.signers(all commits)``: read in one ``git cat-file --batch``, checked in-process (sshsig);
  * the same with ``in_process=False``: git's path alone (one ``git log`` spawning ssh-keygen per commit);
  * a second ``signers`` call on the in-process object (commits already verified: no git at all).

Both paths must name the same signer for every commit, and every commit must have one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import TrustedSigner

AUTHORS, APPROVERS = ["alice", "bob", "dave", "erin", "frank"], ["carol", "grace"]


def git(work: Path, person: str, *args: str) -> str:
    email = f"{person}@example.com"
    env = {**os.environ, "GIT_AUTHOR_NAME": person, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": person,
           "GIT_COMMITTER_EMAIL": email, "HOME": str(work.parent)}  # fmt: skip
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={work.parent / 'keys' / person}"]
    done = subprocess.run(["git", *signing, *args], cwd=work, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def build(root: Path, merges: int, commits: int) -> Path:
    """The repository (built once per ``root``); prints progress."""
    work, keys = root / "repo", root / "keys"
    if (work / ".git").exists():
        return work
    keys.mkdir(parents=True, exist_ok=True)
    for person in AUTHORS + APPROVERS:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", person, "-f", str(keys / person)],
                       check=True)  # fmt: skip
    work.mkdir()
    git(work, "carol", "init", "-q", "-b", "main")
    git(work, "carol", "commit", "-q", "-S", "--allow-empty", "-m", "start")
    started = time.perf_counter()
    for merge in range(merges):
        author = AUTHORS[merge % len(AUTHORS)]
        git(work, author, "checkout", "-q", "-b", f"change-{merge}", "main")
        for number in range(commits):
            (work / f"{author}-{merge}-{number}.txt").write_text(f"change {merge}.{number}\n")
            git(work, author, "add", "-A")
            git(work, author, "commit", "-q", "-S", "-m", f"change {merge}.{number} by {author}")
        git(work, author, "checkout", "-q", "main")
        branch = f"change-{merge}"
        git(work, APPROVERS[merge % 2], "merge", "-q", "--no-ff", "-S", "-m", f"Merge {branch}", branch)
        if (merge + 1) % 10 == 0:
            print(f"  built {merge + 1} of {merges} merges ({time.perf_counter() - started:.0f} s)", flush=True)
    return work


def trust(root: Path) -> tuple[TrustedSigner, ...]:
    people = AUTHORS + APPROVERS
    lines = {p: " ".join((root / "keys" / f"{p}.pub").read_text().split()[:2]) for p in people}
    return tuple(TrustedSigner(Identity(p, frozenset({"approvers" if p in APPROVERS else "authors"})), (lines[p],))
                 for p in people)  # fmt: skip


def timed(signatures: Signatures, commits: list[str]) -> tuple[float, dict[str, Identity | None]]:
    started = time.perf_counter()
    found = signatures.signers(commits)
    return time.perf_counter() - started, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--merges", type=int, default=100)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the repository here once and reuse it")
    options = parser.parse_args()
    root = options.keep or Path(tempfile.mkdtemp(prefix="signatures-bench-"))
    print(f"repository: {root} ({options.merges} merges of {options.commits} signed commits)", flush=True)
    work = build(root, options.merges, options.commits)
    signers = trust(root)
    commits = git(work, "carol", "rev-list", "main").split()
    print(f"{len(commits)} signed commits", flush=True)
    results: dict[str, list[float]] = {"in-process": [], "git alone": [], "again (verified)": []}
    for round_ in range(options.rounds):
        fast = Signatures(work, signers, root / f"state-{round_}-fast")
        seconds, ours = timed(fast, commits)
        results["in-process"].append(seconds)
        results["again (verified)"].append(timed(fast, commits)[0])
        seconds, gits = timed(Signatures(work, signers, root / f"state-{round_}-git", in_process=False), commits)
        results["git alone"].append(seconds)
        if ours != gits or any(v is None for v in ours.values()):
            print("MISMATCH: the two paths disagree, or a commit has no signer", file=sys.stderr)
            return 1
        print(f"  round {round_ + 1}: in-process {results['in-process'][-1]:.3f} s, git alone {seconds:.3f} s")
    for name, seconds in results.items():
        print(f"{name:>18}: median {statistics.median(seconds):.3f} s over {len(seconds)} rounds "
              f"({', '.join(f'{s:.3f}' for s in seconds)})")  # fmt: skip
    met = statistics.median(results["in-process"]) < 2.0
    print(f"target: {len(commits)} commits in under 2 s in-process: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
