"""Regenerate pods/ and index.tsv from a checkout of kubernetes/pod-security-admission.

    python tests/data/pss/refresh.py /path/to/pod-security-admission

Each distinct Pod is stored once, as pods/<upstream file stem>-<sha256 prefix>.yaml, unchanged; index.tsv has one
row per upstream file: level, version, verdict, upstream file stem, stored file.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(upstream: Path) -> None:
    testdata = upstream / "test" / "testdata"
    shutil.rmtree(HERE / "pods", ignore_errors=True)
    (HERE / "pods").mkdir()
    rows, stored = [], {}
    for level in ("baseline", "restricted"):
        for version in sorted((testdata / level).iterdir(), key=lambda p: int(p.name.split(".")[1])):
            for verdict in ("pass", "fail"):
                for fixture in sorted((version / verdict).glob("*.yaml")):
                    data = fixture.read_bytes()
                    digest = hashlib.sha256(data).hexdigest()[:10]
                    if digest not in stored:
                        stored[digest] = f"{fixture.stem}-{digest}.yaml"
                        (HERE / "pods" / stored[digest]).write_bytes(data)
                    rows.append("\t".join((level, version.name, verdict, fixture.stem, stored[digest])))
    header = "# level\tversion\tverdict\tfixture\tfile in pods/\n"
    (HERE / "index.tsv").write_text(header + "\n".join(rows) + "\n")
    print(f"{len(rows)} fixtures, {len(stored)} distinct Pods")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
