"""Warnings that name the user's line: :func:`warn`.

``warnings.warn(..., stacklevel=n)`` names the frame ``n`` calls up, which is the library's own line whenever
the call that warns sits deeper than its author counted (a builder calling a helper, a callback called by
Keras). :func:`warn` names the caller of the outermost relu_ratio frame instead: the user's line, which the
default filters show once and a filter on the user's module selects (Python 3.12's ``skip_file_prefixes``,
on every Python this package supports).

Example:
    >>> warn("normalization looks like the statistics of images scaled to [0, 1]")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

PACKAGE = f"{Path(__file__).parent}{os.sep}"


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the code that called into relu_ratio last from
    outside it (a CLI's: the interpreter's ``runpy``)."""
    warnings.warn(message, category, stacklevel=_outside_level())


def _outside_level() -> int:
    """The ``stacklevel`` (for :func:`warn`'s own ``warnings.warn``) of the caller of the outermost frame
    of relu_ratio's code."""
    frame, level, outermost = sys._getframe(2), 2, 2  # level 2: warn's caller, always the package's
    while frame is not None:
        if frame.f_code.co_filename.startswith(PACKAGE):
            outermost = level
        frame, level = frame.f_back, level + 1
    return outermost + 1
