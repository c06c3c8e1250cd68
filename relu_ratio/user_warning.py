"""Warnings that name the user's line: :func:`warn`.

``warnings.warn(..., stacklevel=n)`` names the frame ``n`` calls up, which is the library's own line whenever
the call that warns sits deeper than its author counted (a builder calling a helper) or below another
library's frames (keras-tuner calling back into relu_ratio). :func:`warn` names the caller of the outermost
relu_ratio frame instead: the user's line, which the default filters show once and a filter on the user's
module selects. Under ``python -m relu_ratio...`` it names the command's own line, not the interpreter's.

Example:
    >>> warn("normalization looks like the statistics of images scaled to [0, 1]")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from types import FrameType, ModuleType

PACKAGE = f"{Path(__file__).parent}{os.sep}"


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the code that called into relu_ratio last from
    outside it, or to the command's line where that is the interpreter running ``python -m``."""
    warnings.warn(message, category, stacklevel=_outside_level())


def _outside_level() -> int:
    """The ``stacklevel`` (for :func:`warn`'s own ``warnings.warn``) of the caller of the outermost frame
    of relu_ratio's code, counted as ``warnings`` counts: Python's import machinery skipped."""
    frame, level, outermost, command = sys._getframe(2), 2, 2, False  # level 2: warn's caller, the package's
    while frame is not None:
        if _in_import_machinery(frame):
            frame = frame.f_back
            continue
        if frame.f_code.co_filename.startswith(PACKAGE):
            outermost, command = level, frame.f_globals.get("__name__") == "__main__"
        frame, level = frame.f_back, level + 1
    return outermost if command else outermost + 1


def _in_import_machinery(frame: FrameType) -> bool:
    """A frame that ``warnings`` does not count (as CPython's ``_is_internal_frame``)."""
    filename = frame.f_code.co_filename
    return "importlib" in filename and "_bootstrap" in filename


def give_again(caught: warnings.WarningMessage) -> None:
    """Give a warning that ``warnings.catch_warnings(record=True)`` held back as ``warnings.warn`` gave it:
    judged by the filters against the module of the file it names (a filter on ``module=`` matches), and
    shown once per location where they say so (the module's ``__warningregistry__``).

    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.warn("held back")
    >>> give_again(caught[0])  # doctest: +SKIP
    """
    module = next((m for m in list(sys.modules.values())
                   if isinstance(m, ModuleType) and getattr(m, "__file__", None) == caught.filename), None)
    warnings.warn_explicit(
        caught.message, caught.category, caught.filename, caught.lineno,
        module=getattr(module, "__name__", None),
        registry=vars(module).setdefault("__warningregistry__", {}) if module is not None else None,
        source=caught.source,
    )  # fmt: skip
