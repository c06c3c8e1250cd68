"""Command-line flags generated from a dataclass, so a config and its CLI cannot drift apart.

Each field becomes ``--field-name`` (or ``metadata["flag"]``); its ``metadata`` gives the help line
(``"help"``), the valid values (``"choices"``), the ``--help`` section (``"group"``) and the default's
wording (``"default_text"``). Booleans get ``--x`` / ``--no-x``; a
``tuple[str, ...]`` field takes a comma-separated list. :func:`check_values` checks an instance built
without the CLI (from Python or a JSON file) against the same types and choices. Every command parses
with :class:`Parser` and says a mistake with :func:`report_error`.

Example:
    >>> import argparse, dataclasses
    >>> @dataclasses.dataclass
    ... class Config:
    ...     epochs: int = dataclasses.field(default=1, metadata={"help": "training epochs"})
    >>> parser = Parser()
    >>> add_arguments(parser, Config)
    >>> parser.parse_args(["--epochs", "3"]).epochs
    3
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import sys
import types
import typing
from collections.abc import Callable
from typing import NoReturn

from relu_ratio import files
from relu_ratio.validators import is_instance, suggest


class Parser(argparse.ArgumentParser):
    """The ``ArgumentParser`` of every relu_ratio command: a usage mistake (an unknown flag, a bad choice, a
    missing argument) is said as ``prog: error: ...`` and a line pointing to ``--help``, exit status 2 as
    argparse's own, without the usage (dozens of lines for ``train``) before it. Its sub-commands
    (``add_subparsers``) are :class:`SubCommand` parsers: each says its own mistakes, an unknown flag too.

    Example:
        >>> parser = Parser(prog="x")
        >>> parser.parse_args(["--epochz", "3"])  # doctest: +SKIP
        x: error: unrecognized arguments: --epochz 3
        run 'x --help' for the usage
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nrun '{self.prog} --help' for the usage\n")

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", SubCommand)
        return super().add_subparsers(**kwargs)


class SubCommand(Parser):
    """A sub-command's parser (``python -m relu_ratio.zoo info``): an argument it does not know is its own
    mistake, said with its own name and ``--help``. argparse hands such arguments back to the command above,
    whose error named the command without the sub-command and pointed to a ``--help`` that does not list the
    sub-command's flags."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, unknown = super().parse_known_args(args, namespace)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed, unknown


def report_error(error: Exception) -> int:
    """Say a user's mistake (bad settings, a file that cannot be read or written) in one line on stderr and
    give the exit status 2. An ``OSError`` of the package's own wording (an errno and a message, no file
    name) is said without Python's ``[Errno N]`` prefix. A standard output closed by its reader
    (``... | head``) is no mistake of the user's: re-raised, for :func:`exit_with` to end the command quietly.

    >>> report_error(ValueError("--epochs 0 is not a positive number of epochs"))
    2
    """
    if isinstance(error, BrokenPipeError):
        raise error
    worded = isinstance(error, OSError) and error.strerror and error.filename is None
    print(f"error: {error.strerror if worded else error}", file=sys.stderr)
    return 2


def report_interrupt(kept: str | None = None) -> int:
    """Say in one line on stderr that Ctrl-C stopped the command, with ``kept`` (what was kept and how to go
    on) where it keeps work, and give the exit status 130 (128 + SIGINT, as shells give it).

    >>> report_interrupt("nothing was written.")
    130
    """
    print(f"interrupted: {kept}" if kept else "interrupted.", file=sys.stderr)
    return 130


def exit_with(main: Callable[[], int | None]) -> NoReturn:
    """Run a command's ``main`` and exit with its status. A reader that stops early
    (``python -m relu_ratio.zoo table | head -3``) ends the command quietly with status 1, as Python's
    documentation of SIGPIPE advises, instead of an error line or a traceback about the closed pipe. Ctrl-C
    ends it with status 130 and one line (a command that keeps work says itself how to go on)."""
    try:
        status = main()
        sys.stdout.flush()  # the last buffered lines meet a closed pipe here, not in the exit's flush
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush then writes nowhere
        status = 1
    except KeyboardInterrupt:
        status = report_interrupt()
    sys.exit(status)


def path(text: str) -> str:
    """The ``type`` of a flag that names a file or folder: a path that names nothing (empty or blank,
    :func:`relu_ratio.files.names_nothing`) is refused, where it would be read as not given or as the
    current folder.

    >>> path("docs/RESULTS.md")
    'docs/RESULTS.md'
    """
    if files.names_nothing(text):
        raise argparse.ArgumentTypeError(f"{text!r} names no file or folder (it is empty or blank)")
    return text


def _comma_list(text: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``; an empty item (``"a,,b"``, ``"a,"``) is refused, not dropped."""
    parts = tuple(part.strip() for part in text.split(","))
    if not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item; give comma-separated values, e.g. a,b")
    return parts


_CONVERTERS: dict[object, Callable[[str], object]] = {  # a resolved type: its flag's ``type``
    int: int, int | None: int, float: float, float | None: float, str: str, str | None: str,
    str | float | None: str, tuple[str, ...] | None: _comma_list,
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one flag per field of the dataclass ``cls`` to ``parser`` (in groups where fields name one), its
    ``type`` from the field's resolved annotation (:func:`_hints`: ``int | None``, ``Optional[int]`` and
    the text ``"int | None"`` alike)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        meta = field.metadata
        group = meta.get("group")
        target = parser if group is None else groups.setdefault(group, parser.add_argument_group(group))
        flag = meta.get("flag", "--" + field.name.replace("_", "-"))
        shown = "off" if field.default is False else "on" if field.default is True else field.default
        default_text = meta.get("default_text", f"default: {shown}")
        help_text = f"{meta['help']} ({default_text})"
        hint = hints[field.name]
        if hint is bool:
            target.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=field.default, help=help_text
            )
            continue
        if hint not in _CONVERTERS:
            known = ", ".join(["bool", *map(_type_text, _CONVERTERS)])
            raise TypeError(f"{cls.__name__}.{field.name}: no command-line type for {_type_text(hint)} "
                            f"(flags are made for {known})")  # fmt: skip
        choices = meta.get("choices")
        convert = _CONVERTERS[hint] if choices is None else _one_of(_CONVERTERS[hint], choices)
        listed = None if choices is None else "{" + ",".join(map(str, choices)) + "}"  # as argparse spells it
        metavar = meta.get("metavar") or listed
        target.add_argument(
            flag, dest=field.name, type=convert, default=field.default, help=help_text, metavar=metavar
        )


def _type_text(annotation: object) -> str:
    """``int`` for the class, ``int | None`` for a union: an annotation as it is written."""
    return annotation.__name__ if isinstance(annotation, type) else repr(annotation)


def _one_of(convert: Callable[[str], object], choices: tuple) -> Callable[[str], object]:
    """The ``type`` of a flag with ``choices``: argparse's own check says the choices; this one also says
    the closest (``--recipe fats``: "did you mean 'fast'?")."""

    def parse(text: str) -> object:
        value = convert(text)
        if value not in choices:
            listed = ", ".join(repr(choice) for choice in choices)
            close = suggest(text, map(str, choices)) if all(isinstance(c, str) for c in choices) else ""
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {listed}){close}")
        return value

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its own errors
    return parse


_KINDS = {  # a type: (the check, the words for one value, for several)
    bool: (lambda v: isinstance(v, bool), "true or false (a boolean)", "booleans"),
    int: (lambda v: is_instance(v, (int,)), "an integer", "integers"),
    float: (lambda v: is_instance(v, (int, float)), "a number", "numbers"),
    str: (lambda v: isinstance(v, str), "a string", "strings"),
    type(None): (lambda v: v is None, "None (null)", "None (null)"),
}  # fmt: skip


def _kind(annotation: object) -> tuple[Callable[[object], bool], str, str]:
    """The check of ``annotation`` (a type of :data:`_KINDS`, a dataclass, ``X | Y`` or ``tuple[X, ...]``
    of these) and its words for one value and for several.

    >>> _kind(tuple[int, ...] | None)[1]
    'a tuple of integers or None (null)'
    >>> _kind(tuple[int | None, ...])[1]
    'a tuple whose items are integers or None (null)'
    """
    if annotation in _KINDS:
        return _KINDS[annotation]
    if dataclasses.is_dataclass(annotation):  # its own __post_init__ checks its fields
        name = annotation.__name__
        return (lambda v: isinstance(v, annotation)), f"a {name} object", f"{name} objects"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_kind(arg) for arg in args]
        return ((lambda v: any(check(v) for check, _, _ in parts)), " or ".join(one for _, one, _ in parts),
                " or ".join(several for _, _, several in parts))  # fmt: skip
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        check, _, several = _kind(args[0])
        if typing.get_origin(args[0]) in (typing.Union, types.UnionType):  # not "a tuple of X or Y": (X | Y)
            one, several = f"a tuple whose items are {several}", f"tuples whose items are {several}"
        else:
            one, several = f"a tuple of {several}", f"tuples of {several}"
        return (lambda v: isinstance(v, tuple) and all(check(item) for item in v)), one, several
    raise TypeError(f"no check for the type {annotation!r}")


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    """The annotation of each field of the dataclass ``cls``, resolved (``typing.get_type_hints``: a module
    with ``from __future__ import annotations`` spells them as text), for its flags and its checks."""
    return typing.get_type_hints(cls)


@functools.cache
def _checks(cls: type) -> dict[str, tuple[Callable[[object], bool], str, str]]:
    """The check of each field of the dataclass ``cls``, from its resolved annotations (:func:`_hints`)."""
    hints = _hints(cls)
    checks = {}
    for field in dataclasses.fields(cls):
        try:
            checks[field.name] = _kind(hints[field.name])
        except TypeError as error:
            raise TypeError(f"{cls.__name__}.{field.name}: {error}") from None
    return checks


def check_values(config: object) -> None:
    """Check every field of the dataclass instance ``config`` against its annotated type (``bool``,
    ``int``, ``float``, ``str``, ``None``, a dataclass, ``X | Y`` and ``tuple[X, ...]`` of these) and its
    ``choices``: a JSON file or a Python caller can pass ``"false"`` where a boolean belongs, which
    ``bool("false")`` would turn into ``True``. An ``int`` is a valid ``float``; a ``bool`` is never a number;
    a dataclass value is an instance of it (whose own ``__post_init__`` checked its fields).

    Raises:
        ValueError: naming the field, the value received and what is valid.

    Example:
        >>> @dataclasses.dataclass
        ... class Run:
        ...     seeds: tuple[int, ...]
        >>> check_values(Run([0, 1]))
        Traceback (most recent call last):
        ValueError: seeds must be a tuple of integers; received [0, 1].
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        check, words, _ = _checks(type(config))[field.name]
        if not check(value):
            numpy = " (a numpy value: the config is recorded as JSON, so pass a Python int, float or bool)"
            raise ValueError(f"{field.name} must be {words}; received {value!r}"
                             f"{numpy if type(value).__module__ == 'numpy' else ''}.")  # fmt: skip
        choices = field.metadata.get("choices")
        if choices is not None and value is not None and value not in choices:
            close = suggest(value, map(str, choices)) if isinstance(value, str) else ""
            raise ValueError(f"{field.name} must be one of {list(choices)}; received {value!r}{close}.")


def command(prog: str, config: object, skip: tuple[str, ...] = ()) -> str:
    """The command line that reproduces the dataclass instance ``config`` (every set field spelled out)."""
    args = ["python", "-m", prog]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name in skip or value is None:
            continue
        flag = field.metadata.get("flag", "--" + field.name.replace("_", "-"))
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, tuple):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return shlex.join(args)


class ExampleFormatter(argparse.HelpFormatter):
    """Wraps text as usual, but keeps an indented line (an example command) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = text.split("\n\n")
        return "\n\n".join(
            "\n".join(indent + line for line in part.splitlines())
            if any(line.startswith("  ") for line in part.splitlines())
            else super(ExampleFormatter, self)._fill_text(part, width, indent)
            for part in paragraphs
        )


def examples(*commands: str, after: str = "") -> dict:
    """Keyword arguments for :class:`argparse.ArgumentParser` (or ``add_parser``): an epilog of example
    commands, then ``after`` (a paragraph, wrapped).

    Example:
        >>> parser = argparse.ArgumentParser(prog="x", **examples("python -m x --go"))
        >>> parser.format_help().splitlines()[-2:]
        ['example:', '  python -m x --go']
    """
    epilog = ("example:" if len(commands) == 1 else "examples:") + "".join(f"\n  {c}" for c in commands)
    return {"epilog": epilog + (f"\n\n{after}" if after else ""), "formatter_class": ExampleFormatter}
