"""relu_ratio's warnings name the user's line, however deep in the package (or below another library's
frames) the code that warns sits."""

from __future__ import annotations

import sys

import pytest

from relu_ratio import models, user_warning


def _another_library(call):
    return call()


def test_a_builders_warning_names_the_users_line():
    with pytest.warns(UserWarning, match="scaled to \\[0, 1\\]") as caught:
        called_from = sys._getframe().f_lineno + 1
        models.build("resnet8_21", normalization=([0.5] * 3, [0.2] * 3))
    [ours] = [w for w in caught if "scaled to [0, 1]" in str(w.message)]
    assert (ours.filename, ours.lineno) == (__file__, called_from)  # was models.py's line


def test_a_warning_below_another_librarys_frames_names_the_caller_of_the_outermost_package_frame():
    source = "def inner():\n    warn('deep')\n\ndef outer(through):\n    return through(inner)\n"
    package_code = {"warn": user_warning.warn}  # a module of relu_ratio, as far as frames tell
    exec(compile(source, f"{user_warning.PACKAGE}simulated.py", "exec"), package_code)
    with pytest.warns(UserWarning, match="deep") as caught:
        called_from = sys._getframe().f_lineno + 1
        package_code["outer"](_another_library)
    assert (caught[0].filename, caught[0].lineno) == (__file__, called_from)  # not _another_library's


def test_pythons_import_machinery_between_is_not_counted_and_a_command_names_its_own_line():
    """As ``warnings`` counts: frames of ``importlib._bootstrap`` (a package module imported by the package,
    warning as it loads) are skipped; and under ``python -m relu_ratio...`` (the package's module is
    ``__main__``) the warning names the command's line, not the interpreter's ``runpy``."""
    importing = {}  # a frame of Python's import machinery, as far as frames tell
    exec(compile("def load(call):\n    return call()\n", "<frozen importlib._bootstrap>", "exec"), importing)
    source = "def inner():\n    warn('deep')\n\ndef outer(through):\n    return through(inner)\n"
    for name, expected in (("relu_ratio.simulated", None), ("__main__", 5)):
        package_code = {"warn": user_warning.warn, "__name__": name}
        exec(compile(source, f"{user_warning.PACKAGE}simulated.py", "exec"), package_code)
        with pytest.warns(UserWarning, match="deep") as caught:
            called_from = sys._getframe().f_lineno + 1
            package_code["outer"](importing["load"])
        where = (f"{user_warning.PACKAGE}simulated.py", expected) if expected else (__file__, called_from)
        assert (caught[0].filename, caught[0].lineno) == where, name
