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

SOURCE = Path(__file__).resolve().parents[1]


def source_commit(root: Path = SOURCE) -> str | None:
    """The commit checked out at ``root`` (``"<sha>+dirty"`` when the package source or ``pyproject.toml``
    has uncommitted changes). Where ``root`` is not the top of a git checkout (an installed wheel, even
    inside another repository; a copy of a checkout without ``.git``, as on the lent GPU machine) or git is
    missing: ``$RELU_RATIO_SOURCE_COMMIT`` if set (what the copy was made from), else ``None``."""
    try:
        if Path(_git(root, "rev-parse", "--show-toplevel")).resolve() == Path(root).resolve():
            sha = _git(root, "rev-parse", "HEAD")
            source = ("--", "relu_ratio", "pyproject.toml")
            dirty = _git(root, "status", "--porcelain", "--untracked-files=no", *source)
            return f"{sha}+dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("RELU_RATIO_SOURCE_COMMIT") or None


def _git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
