"""Where a result came from: the git commit of the relu_ratio source that produced it.

Example:
    >>> from relu_ratio.provenance import source_commit
    >>> source_commit()  # doctest: +SKIP
    '9ba0edc3f1...'
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1]


def source_commit(root: Path = SOURCE) -> str | None:
    """The commit checked out at ``root`` (``"<sha>+dirty"`` with uncommitted changes to tracked files),
    or ``None`` where ``root`` is not a git checkout (an installed wheel) or git is missing."""
    try:
        sha = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def _git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
