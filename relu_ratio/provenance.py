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
        top = git(root, "rev-parse", "--show-toplevel").decode().strip()
        if Path(top).resolve() != Path(root).resolve():
            return None
        sha = git(root, "rev-parse", "HEAD").decode().strip()
        source = ("--", "relu_ratio", "pyproject.toml")
        dirty = git(root, "status", "--porcelain", "--untracked-files=no", *source).strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


GIT_TIMEOUT_S = 60.0  # a git command that takes longer (a hung network filesystem) is given up


def git(folder: str | os.PathLike, *args: str) -> bytes:
    """What ``git -C folder <args>`` writes to its standard output: the package's one way to run git.

    Raises:
        OSError: git cannot be run (not installed).
        subprocess.CalledProcessError: git failed (its message in ``stderr``, bytes).
        subprocess.TimeoutExpired: git gave no answer in :data:`GIT_TIMEOUT_S` seconds.

    >>> git(SOURCE, "rev-parse", "--is-inside-work-tree")  # doctest: +SKIP
    b'true\\n'
    """
    command = ["git", "-C", os.fspath(folder), *args]
    return subprocess.run(command, capture_output=True, timeout=GIT_TIMEOUT_S, check=True).stdout
