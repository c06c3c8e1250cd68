"""Where a result came from: the git commit of the relu_ratio source that produced it.

Example:
    >>> from relu_ratio.provenance import source_commit
    >>> source_commit()  # doctest: +SKIP
    '9ba0edc3f1...'
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from relu_ratio.paths import setting

SOURCE = Path(__file__).resolve().parents[1]


def source_commit(root: Path = SOURCE) -> str | None:
    """``$RELU_RATIO_SOURCE_COMMIT`` if set: the commit a copy of the checkout was made from, for a copy
    whose own git state may not tell (the lent GPU machine's copy carried a stale ``.git``). Else the
    commit checked out at ``root`` (``"<sha>+dirty"`` when the package source or ``pyproject.toml`` has
    uncommitted changes), or ``None`` where ``root`` is not the top of a git checkout (an installed wheel,
    even inside another repository) or git is missing."""
    if setting("RELU_RATIO_SOURCE_COMMIT"):
        return os.environ["RELU_RATIO_SOURCE_COMMIT"]
    try:
        if Path(_git(root, "rev-parse", "--show-toplevel")).resolve() != Path(root).resolve():
            return None
        sha = _git(root, "rev-parse", "HEAD")
        source = ("--", "relu_ratio", "pyproject.toml")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no", *source)
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def _git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
