"""Small checks that error messages across the package share: a suggestion for a misspelt name, a finite
number, an integer in range (a bool is neither a number nor an integer here).

Example:
    >>> from relu_ratio.validators import is_finite_number, is_integer, suggest
    >>> suggest("resent", ["resnet", "preact"]), is_finite_number(float("nan")), is_integer(True)
    (" (did you mean 'resnet'?)", False, False)
"""

from __future__ import annotations

import collections
import difflib
import math
from collections.abc import Iterable

import numpy as np


def repeated(items: Iterable) -> list:
    """The items given more than once, sorted: ``repeated(["0", "1", "0"]) == ["0"]``."""
    return sorted(item for item, count in collections.Counter(items).items() if count > 1)


def suggest(word: str, choices: Iterable[str], n: int = 1) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` (the ``n`` closest, best first:
    ``" (did you mean 'x' or 'y'?)"``), or ``""``: for error messages.

    >>> suggest("resent20_21", ["resnet20_11", "resnet20_21", "preact164_32"], n=3)
    " (did you mean 'resnet20_21' or 'resnet20_11'?)"
    """
    close = difflib.get_close_matches(str(word), list(choices), n=n, cutoff=0.5)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def plain_number(value: object) -> object:
    """A numpy number as the Python number it holds (``classes=labels.max() + 1`` gives ``np.int64``);
    anything else, numpy booleans included, as it is, for the checks to judge.

    >>> plain_number(np.int64(10)), plain_number(np.float32(0.5)), isinstance(plain_number(np.bool_(1)), bool)
    (10, 0.5, False)
    """
    return value.item() if isinstance(value, np.number) else value


def is_instance(value: object, types: tuple[type, ...]) -> bool:
    """``isinstance(value, types)``, except that a bool is no int (and so no number) unless ``bool`` is one
    of ``types``: the check of a JSON value's type.

    >>> is_instance(True, (int, float)), is_instance(True, (bool, int)), is_instance(2, (int, float))
    (False, True, True)
    """
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def is_finite_number(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return is_instance(value, (int, float)) and math.isfinite(value)


def check_bool(value: object, where: str) -> None:
    """Raise ``ValueError`` unless ``value`` is ``True`` or ``False`` (a string ``"no"`` would read as true;
    numpy's booleans are taken); ``where`` names it in the message.

    >>> check_bool(np.bool_(True), "return_report")
    >>> check_bool("no", "return_report")
    Traceback (most recent call last):
    ValueError: return_report must be True or False; received 'no'.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where} must be True or False; received {value!r}.")


def check_seed(seed: object, where: str = "seed") -> None:
    """Raise ``ValueError`` unless ``seed`` is one of numpy's seeds, an int in [0, 2**32 - 1]; ``where``
    names it in the message.

    >>> check_seed(-1, "run 2: seed")
    Traceback (most recent call last):
    ValueError: run 2: seed must be an integer in [0, 2**32 - 1]; received -1.
    """
    if not is_integer(seed, 0) or seed >= 2**32:
        raise ValueError(f"{where} must be an integer in [0, 2**32 - 1]; received {seed!r}.")


def is_integer(value: object, minimum: int | None = None) -> bool:
    """An int (not a bool), and at least ``minimum`` if given: ``is_integer(n, 1)`` for a positive count.

    >>> is_integer(3, 1), is_integer(0, 1), is_integer(2.0), is_integer(False, 0)
    (True, False, False, False)
    """
    return is_instance(value, (int,)) and (minimum is None or value >= minimum)
