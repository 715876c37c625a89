"""Only reviewed revisions reach the cluster: every first-parent step between the applied commit and a new
head must be accounted for by review evidence, under the operator's review rules (``rules.py``).

What is checked is what would reach the cluster. Each path whose content at the head differs from the
applied commit's is answerable to every step that changed it since it last held the applied content
(``steps.py``: a later reviewed edit does not review lines an earlier push left), and each such step must be:

- in ``signed-merge`` mode, a merge of one branch signed by a key the trust file maps (the approver), who meets
  every rule for the path and wrote none of it: every commit the merge brought that changed the path is
  signed by a trusted key (so its author is known), none by the approver. A path the merge took other than
  git's own merge of its parents makes (an "evil merge", a conflict resolved in the merge, the branch's
  version taken over main's) was written by the approver, so it is refused as self-approval;
- in ``github`` mode, the merge commit of a pull request merged into the branch (``merge_commit_sha``),
  whose head holds the path's content, approved on that head by people the trust file maps who wrote none
  of its commits (each signed with a key GitHub verified), who meet every rule for the path;
- in either mode, a merge whose parents share several merge bases that disagree on the path (a criss-cross)
  is refused, and a commit pushed straight is refused unless a ``pushes`` rule lets its signer (a bot with
  its own key) push every path it is answerable for.

A change reverted before the head never reaches the cluster, so it does not block: reverting an unreviewed
push and merging the same change through review makes the branch acceptable again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from gitopsguard.errors import GitOpsGuardError, SourceError
from gitopsguard.evidence.history import Git, History
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import TrustedSigner
from gitopsguard.source.rules import ReviewRules
from gitopsguard.source.steps import Merged, RangeHistory, Step, merge_bases, own_changes, read_range

OFF_NOTE = "NOT REVIEWED: review mode off, applied whoever pushed it"
MAX_PROBLEMS = 20
_COMMIT_ID = re.compile(r"[0-9a-f]{7,64}")  # lines in a refusal: the first of thousands of paths say enough
_CACHED = 16
_ASK_GITHUB_AGAIN = 60.0  # seconds a github-mode refusal stands before the forge is asked again


class ReviewMode(StrEnum):
    OFF = "off"
    SIGNED_MERGE = "signed-merge"
    GITHUB = "github"


@dataclass(frozen=True)
class Approved:
    """One first-parent step and the evidence that accounts for it."""

    commit: str
    how: str  # "merge signed by carol", "pull request #12 approved by carol", "push signed by image-bot"
    paths: int = 0  # how many paths at the head it brought


@dataclass(frozen=True)
class Review:
    """Why a head may be applied: from which commit it was verified, and each step's evidence."""

    base: str | None
    head: str
    approved: tuple[Approved, ...] = ()
    note: str = ""  # how the base was chosen (--trust-from), or that review was skipped (break glass, off)

    def summary(self, limit: int = 5) -> str:
        shown = [f"{a.commit[:12]} {a.how}" for a in self.approved if a.paths][-limit:]
        more = sum(1 for a in self.approved if a.paths) - len(shown)
        parts = [*([self.note] if self.note else []), *shown, *([f"and {more} more"] if more > 0 else [])]
        return "; ".join(parts) or "no change since the applied commit"


class UnreviewedRevisionError(GitOpsGuardError):
    """A head holds a change no allowed approver reviewed; ``commit`` is the first step that brought one."""

    def __init__(self, head: str, commit: str, subject: str, who: str, problems: tuple[str, ...]) -> None:
        subject, problems = printable(subject), tuple(printable(p) for p in problems)  # paths are anyone's text
        shown = problems[:MAX_PROBLEMS] + ((f"... and {len(problems) - MAX_PROBLEMS} more",)
                                            if len(problems) > MAX_PROBLEMS else ())  # fmt: skip
        super().__init__(
            f"revision {head[:12]} is refused: commit {commit[:12]} {subject!r} ({who}) was not reviewed as the "
            "trust file's review rules require. Merge the change through a reviewed pull request (the last "
            "applied commit is held)" + "".join(f"\n  - {p}" for p in shown)
        )
        self.head, self.commit, self.subject, self.who, self.problems = head, commit, subject, who, problems


class Forge(Protocol):
    """The forge's view of a merge (evidence/github.py speaks GitHub's REST API)."""

    def merged_pull(self, history: History, merge: str, branch: str) -> dict[str, Any] | None: ...
    def approvers(self, number: int, head: str, logins: dict[str, Identity]) -> tuple[Identity, ...]: ...
    def author(self, pull: dict[str, Any], logins: dict[str, Identity]) -> Identity | None: ...
    def head_holds(self, history: History, pull: dict[str, Any], path: str, blob: str) -> bool: ...
    def writers(self, number: int, logins: dict[str, Identity]) -> tuple[tuple[Identity, ...], str]: ...


class _RefusedError(Exception):
    def __init__(self, who: str, problems: list[str]) -> None:
        super().__init__(who)
        self.who, self.problems = who, tuple(problems)


@dataclass(frozen=True)
class ReviewSettings:
    mode: ReviewMode
    rules: ReviewRules
    signers: tuple[TrustedSigner, ...]
    state_dir: Path
    branch: str = "main"
    trust_from: str | None = None  # the first sync's base, named by the operator
    forge: Forge | None = None  # github mode
    logins: tuple[tuple[str, Identity], ...] = ()  # github login -> who, from the trust file


class Reviewer:
    """Verifies ranges of one repository's history; verdicts are kept, so a head verified once costs no git
    work again."""

    def __init__(self, settings: ReviewSettings) -> None:
        self.settings = settings
        self._people = {s.identity.user: s.identity for s in settings.signers}
        self._signatures: dict[Path, Signatures] = {}
        self._verdicts: dict[tuple[str | None, str], tuple[float, Review | UnreviewedRevisionError]] = {}

    def verify(self, repository: Path, old: str | None, new: str, *, first_sync: bool = True) -> Review:
        """The evidence for ``new`` since ``old`` (the applied commit; None on a first sync). Raises
        UnreviewedRevisionError naming the first unreviewed step, SourceError when the range is not a forward
        first-parent history. Without ``old``, ``first_sync`` lets an approved merge at the head stand for the
        history below it (issue 20's first sync); a rewound branch whose fork from the applied history is
        unknown gets no such allowance: only --trust-from."""
        key = (old, new) if first_sync or old else ("rewound", new)
        if key not in self._verdicts or self._stale(*self._verdicts[key]):
            try:
                self._verdicts[key] = (time.monotonic(), self._verify(repository, old, new, first_sync))
            except UnreviewedRevisionError as refused:
                self._verdicts[key] = (time.monotonic(), refused)
            except GitOpsGuardError:
                raise  # git or the forge failed: not a verdict, asked again next time
            except Exception as error:  # hostile input the review did not foresee: refused, never a traceback
                raise SourceError(
                    f"{new[:12]}: the review could not be completed ({type(error).__name__}: "
                    f"{printable(str(error))[:300]}); the applied commit is held"
                ) from error
            while len(self._verdicts) > _CACHED:
                del self._verdicts[next(iter(self._verdicts))]
        verdict = self._verdicts[key][1]
        if isinstance(verdict, UnreviewedRevisionError):
            raise verdict.with_traceback(None)
        return verdict

    def _stale(self, at: float, verdict: Review | UnreviewedRevisionError) -> bool:
        """Git objects never change, so a signed-merge verdict stands; on GitHub an approval may come after a
        refusal, so a refusal there is asked again after a while."""
        github = self.settings.mode is ReviewMode.GITHUB
        return github and isinstance(verdict, UnreviewedRevisionError) and time.monotonic() - at > _ASK_GITHUB_AGAIN

    def _verify(self, repository: Path, old: str | None, new: str, first_sync: bool) -> Review:
        signatures = self._signatures_for(repository)
        git = signatures.git
        history = History(git)
        base, note = self._base(git, history, old, new, first_sync)
        if base == new:
            return Review(base, new, note=note)
        rng = read_range(git, base, new)
        signatures.prove(_to_identify(rng))  # what can be proven in-process, in one batch; git later, if needed
        judged = []
        for step in rng.steps:
            # git's own merge of the parents, one merge at a time: `git log --diff-merges=remerge` over several
            # merges in one call answers wrongly for all but the first (git 2.39, seen in our tests)
            own = own_changes(git, step.commit) if len(step.parents) == 2 and step.paths else frozenset()
            try:
                judged.append(self._judge(git, history, signatures, step, rng, own))
            except _RefusedError as refused:
                raise UnreviewedRevisionError(new, step.commit, _subject(git, step.commit), refused.who,
                                              refused.problems) from None  # fmt: skip
        return Review(base, new, tuple(judged), note)

    def _base(self, git: Git, history: History, old: str | None, new: str, first_sync: bool) -> tuple[str, str]:
        """(the commit to verify from, how it was chosen)."""
        if old is not None:
            return old, ""
        if self.settings.trust_from:
            named = self.settings.trust_from
            if not _COMMIT_ID.fullmatch(named):  # a branch or ref name would move: trust must name a commit
                raise SourceError(f"--trust-from {named[:80]!r}: name a commit by its id (7 to 64 hex digits)")
            try:
                base = git("rev-parse", "--verify", "--end-of-options", f"{named}^{{commit}}")
            except GitOpsGuardError as error:
                raise SourceError(f"--trust-from {named[:80]!r}: no such commit in the repository; name a commit "
                                  "of the tracked branch") from error  # fmt: skip
            return base, f"first sync, trusted from {base[:12]} (--trust-from)"
        if not first_sync:
            raise UnreviewedRevisionError(new, new, _subject(git, new), "a rewound branch's head",
                                          ("the branch was rewritten, and where it left the applied history is "
                                           "unknown; name the commit to verify from with --trust-from",))  # fmt: skip
        parents = history.parents(new)
        if len(parents) < 2:
            raise UnreviewedRevisionError(new, new, _subject(git, new), "the first sync's head",
                                          ("a first sync needs --trust-from COMMIT, or a head that is an approved "
                                           "merge",))  # fmt: skip
        return parents[0], f"first sync from the approved merge {new[:12]}"

    def _judge(
        self, git: Git, history: History, signatures: Signatures, step: Step, rng: RangeHistory, own: frozenset[str]
    ) -> Approved:
        if len(step.parents) == 2 and step.paths and (crossed := _criss_cross(git, step, rng)):
            raise _RefusedError("a merge with several merge bases", crossed)
        if self.settings.mode is ReviewMode.GITHUB:
            return self._pull_request(git, history, signatures, step, own)
        if len(step.parents) == 2:
            return self._signed_merge(signatures, step, rng, own)
        return self._push(signatures, step)

    def _push(self, signatures: Signatures, step: Step) -> Approved:
        """A commit that is no merge: fine when none of its changes reach the head, or a push rule allows
        its signer every path it brought."""
        if len(step.parents) > 2:
            raise _RefusedError("a merge of several branches", ["merge one reviewed branch at a time"])
        if not step.paths:
            return Approved(step.commit, "commit whose changes do not reach the head")
        signer = signatures.signer(step.commit)
        who = f"pushed straight, signed by {signer.user}" if signer else "pushed straight, not signed by a trusted key"
        if signer is not None and all(self.settings.rules.may_push(signer, p) for p in step.paths):
            return Approved(step.commit, f"push signed by {signer.user}, allowed by the pushes rules", len(step.paths))
        needs = [f"{p}: pushed without review; {_needs(self.settings.rules, p)}" for p in step.paths
                 if signer is None or not self.settings.rules.may_push(signer, p)]  # fmt: skip
        raise _RefusedError(who, needs)

    def _signed_merge(self, signatures: Signatures, step: Step, rng: RangeHistory, own: frozenset[str]) -> Approved:
        approver = signatures.signer(step.commit)
        if approver is None:
            raise _RefusedError("a merge not signed by a trusted key",
                           [f"{p}: {_needs(self.settings.rules, p)}" for p in step.paths])  # fmt: skip
        if not step.paths:
            return Approved(step.commit, f"merge signed by {approver.user}")
        # A path the merge took other than git's own merge of its parents makes (an evil merge, a conflict
        # resolved, the branch's version taken over main's) is the signer's own change: always checked.
        wrote = _writers(rng.merged[step.commit], step.paths)
        authors = signatures.signers(sorted({c for commits in wrote.values() for c in commits}))
        problems = []
        for path in step.paths:
            if why := self._merged_path(path, approver, wrote.get(path, []), authors, own):
                problems.append(why)
                if len(problems) > MAX_PROBLEMS:
                    break  # refused already; the rest would cost time and not be shown
        if problems:
            raise _RefusedError(f"merge signed by {approver.user}", problems)
        return Approved(step.commit, f"merge signed by {approver.user}", len(step.paths))

    def _merged_path(
        self, path: str, approver: Identity, wrote: list[str], authors: dict[str, Identity | None], own: frozenset[str],
    ) -> str:  # fmt: skip
        """Why the merge's approver cannot account for ``path``; "" when they can."""
        if path in own:
            return (f"{path}: changed by the merge itself, beyond the branch it merges: the merge's signer wrote it "
                    "and cannot approve it; make the change on the branch (resolve conflicts there)")  # fmt: skip
        if not wrote:
            return f"{path}: the merge takes it from no commit it brings; make the change on the merged branch"
        unknown = [c for c in wrote if authors.get(c) is None]
        if unknown:
            return (f"{path}: commit {unknown[0][:12]} on the merged branch is not signed by a trusted key, so who "
                    "wrote it is unknown; sign every commit of a branch (git config commit.gpgsign true)")  # fmt: skip
        if any(a is not None and a.user == approver.user for a in (authors[c] for c in wrote)):
            return f"{path}: {approver.user} signed the merge of their own change; another approver must merge it"
        return self.settings.rules.unmet(path, (approver,))

    def _pull_request(
        self, git: Git, history: History, signatures: Signatures, step: Step, own: frozenset[str]
    ) -> Approved:
        forge = self.settings.forge
        if forge is None:  # cannot happen: github mode is configured with a forge
            raise _RefusedError("no forge configured", ["configure --github-repo for the github review mode"])
        pull = forge.merged_pull(history, step.commit, self.settings.branch) if step.paths else None
        if pull is None:
            return self._push(signatures, step)
        number, logins = int(pull["number"]), dict(self.settings.logins)
        author = forge.author(pull, logins)
        head = str((pull.get("head") or {}).get("sha") or "")
        who = f"pull request #{number}" + (f" by {author.user}" if author else "")
        writers, unknown = forge.writers(number, logins)
        if unknown:
            raise _RefusedError(who, [unknown])
        wrote = {w.user for w in writers} | ({author.user} if author else set())
        approvers = tuple(a for a in forge.approvers(number, head, logins) if a.user in self._people
                          and a.user not in wrote)  # fmt: skip
        if len(step.parents) == 2 and step.parents[1] != head:
            raise _RefusedError(who, [f"the merge {step.commit[:12]} merged {step.parents[1][:12]}, not the head "
                                      f"{head[:12]} reviewers approved on #{number}"])  # fmt: skip
        own = own if len(step.parents) == 2 else frozenset(step.paths)  # a squash merge is all its own
        blobs = dict(zip(step.paths, _blobs(git, step.commit, step.paths), strict=True))
        problems = []
        for path in step.paths:
            if path in own and not forge.head_holds(history, pull, path, blobs[path]):
                problems.append(f"{path}: the merge holds changes the reviewed head of #{number} does not")
            elif author is None:
                problems.append(f"{path}: #{number} was opened by someone the trust file does not map")
            elif why := self.settings.rules.unmet(path, approvers):
                problems.append(f"{why} (approvals on #{number}'s head commit, by none of its authors)")
        if problems:
            raise _RefusedError(who, problems)
        names = ", ".join(sorted(a.user for a in approvers))
        return Approved(step.commit, f"pull request #{number} approved by {names}", len(step.paths))

    def _signatures_for(self, repository: Path) -> Signatures:
        if repository not in self._signatures:
            state = self.settings.state_dir / f"signatures-{len(self._signatures)}"
            self._signatures[repository] = Signatures(repository, self.settings.signers, state)
        return self._signatures[repository]


def _criss_cross(git: Git, step: Step, rng: RangeHistory) -> list[str]:
    """Problems when the merge's parents have several merge bases that disagree on a path it answers for: the
    reviewer's diff (against one base) then does not show what git's merge (against their combination) does,
    such as undoing a reviewed change. Only a branch that itself merged something can cross."""
    if not any(len(c.parents) > 1 for c in rng.merged[step.commit].commits):
        return []
    bases = merge_bases(git, step.parents[0], step.parents[1])
    if len(bases) < 2:
        return []
    states = [_blobs(git, base, step.paths) for base in bases]
    return [f"{path}: the merged branch and the branch it joins share {len(bases)} merge bases that hold different "
            "versions of it, so a review of the branch's diff does not show what the merge does; merge the current "
            "branch into the feature branch first, and review that" for index, path in enumerate(step.paths)
            if len({state[index] for state in states}) > 1]  # fmt: skip


def _writers(merged: Merged, paths: tuple[str, ...]) -> dict[str, list[str]]:
    """Per answerable path, the commits the merge brought that changed it (one pass over the commits)."""
    wanted, found = set(paths), dict[str, list[str]]()
    for commit in merged.commits:
        for path in wanted.intersection(commit.changed):
            found.setdefault(path, []).append(commit.commit)
    return found


def _to_identify(rng: RangeHistory) -> list[str]:
    """The steps, and the commits each merge brought that changed a path it is answerable for."""
    wanted = [step.commit for step in rng.steps]
    for step in rng.steps:
        if step.commit in rng.merged:
            paths = set(step.paths)
            wanted += [c.commit for c in rng.merged[step.commit].commits if paths & c.changed.keys()]
    return wanted


def _needs(rules: ReviewRules, path: str) -> str:
    found = rules.needs(path)
    if not found:
        return "no review rule covers it, so nobody may change it"
    return "needs a merge approved by " + " and by ".join(str(r) for r in found)


def _blobs(git: Git, commit: str, paths: tuple[str, ...]) -> list[str]:
    """The object id of each path in ``commit`` ("" where absent), in one git call."""
    if not paths:
        return []
    if any("\n" in p for p in paths):
        return ["\n" if "\n" in p else "" for p in paths]  # cannot be asked in batch: never equal to a blob
    asked = "".join(f"{commit}:{p}\n" for p in paths)
    answers = git("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin=asked).split("\n")
    return [line.split()[0] if line.endswith(" blob") else "" for line in answers]


def _subject(git: Git, commit: str) -> str:
    try:
        return git("log", "-1", "--format=%s", commit)[:100]
    except GitOpsGuardError:
        return "?"


def printable(text: str) -> str:
    """``text`` with every character that is not printable (newlines, bidi controls, bytes that were not
    UTF-8) written as an escape, so that a file name cannot forge a line or reorder what a reader sees."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   if not 0xDC80 <= ord(c) <= 0xDCFF else f"\\x{ord(c) - 0xDC00:02x}" for c in text)  # fmt: skip
