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
    return Path(os.environ.get("RELU_RATIO_HOME", os.path.join("~", ".cache", "relu_ratio"))).expanduser()
