"""relu_ratio.flags.add_arguments: a flag per field, its type from the resolved annotation.

No ``from __future__ import annotations`` here, on purpose: the annotations below are types, not text, and
``add_arguments`` must read them as it reads the text ``"int | None"`` of the package's own configs."""

import argparse
import dataclasses
import re
from typing import Optional

import pytest

from relu_ratio import flags


@dataclasses.dataclass
class _Typed:  # Optional[int] and None | float: other spellings of X | None, on purpose
    epochs: int = dataclasses.field(default=1, metadata={"help": "epochs"})
    subset: Optional[int] = dataclasses.field(default=None, metadata={"help": "images"})  # noqa: UP045
    lr: None | float = dataclasses.field(default=None, metadata={"help": "learning rate"})  # noqa: RUF036
    ratio: str | float | None = dataclasses.field(default=None, metadata={"help": "ratio"})
    names: tuple[str, ...] | None = dataclasses.field(default=None, metadata={"help": "names"})
    fast: bool = dataclasses.field(default=False, metadata={"help": "go fast"})


def test_fields_annotated_with_types_not_text_get_working_flags():
    parser = flags.Parser(prog="x")
    flags.add_arguments(parser, _Typed)
    assert vars(parser.parse_args([])) == {f.name: f.default for f in dataclasses.fields(_Typed)}
    parsed = parser.parse_args(
        ["--epochs", "3", "--subset", "50", "--lr", "0.1", "--ratio", "6:5", "--names", "a, b", "--fast"]
    )
    assert vars(parsed) == {
        "epochs": 3, "subset": 50, "lr": 0.1, "ratio": "6:5", "names": ("a", "b"), "fast": True
    }  # fmt: skip
    with pytest.raises(SystemExit):
        parser.parse_args(["--subset", "many"])


def test_a_type_without_a_flag_is_named():
    @dataclasses.dataclass
    class Odd:
        pair: tuple[int, int] = dataclasses.field(default=(1, 2), metadata={"help": "a pair"})

    said = ("Odd.pair: no command-line type for tuple[int, int] (flags are made for bool, int, int | None, "
            "float, float | None, str, str | None, str | float | None, tuple[str, ...] | None)")
    with pytest.raises(TypeError, match=re.escape(said)):
        flags.add_arguments(argparse.ArgumentParser(), Odd)
