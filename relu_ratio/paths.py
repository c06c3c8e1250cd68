"""Where relu_ratio keeps what it writes: ``$RELU_RATIO_HOME``, default ``~/.cache/relu_ratio``.

(How it writes is :mod:`relu_ratio.files`.)

Example:
    >>> from relu_ratio.paths import home
    >>> (home() / "data").name
    'data'
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache root: decoded datasets (``data/``) and exported SavedModels (``saved_models/``)."""
    return Path(setting("RELU_RATIO_HOME") or os.path.join("~", ".cache", "relu_ratio")).expanduser()


def setting(name: str) -> str | None:
    """The environment variable ``name``, ``None`` where it is unset or empty (or blank): ``VAR=`` means
    "not set", as in most tools, never "the current directory"."""
    value = os.environ.get(name, "")
    return value if value.strip() else None
