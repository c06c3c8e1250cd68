"""Where relu_ratio keeps what it writes: ``$RELU_RATIO_HOME``, default ``~/.cache/relu_ratio``.

and how it writes small files: :func:`write_atomic` (readers see the old file or the new one, never half).

Example:
    >>> from relu_ratio.paths import home
    >>> (home() / "data").name
    'data'
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def home() -> Path:
    """The cache root: decoded datasets (``data/``) and exported SavedModels (``saved_models/``)."""
    return Path(os.environ.get("RELU_RATIO_HOME", os.path.join("~", ".cache", "relu_ratio"))).expanduser()


def write_atomic(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write ``content`` (text or bytes) to ``path`` through a temporary file beside it and ``os.replace``.

    Example:
        >>> import tempfile
        >>> write_atomic(Path(tempfile.mkdtemp()) / "a.txt", "hello").read_text()
        'hello'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """:func:`write_atomic` of ``payload`` as indented JSON (non-JSON values written with ``str``)."""
    return write_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
