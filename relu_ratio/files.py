"""The package's one I/O module: how relu_ratio writes files. Atomically (readers see the old file or the
new one, never half of one), durably where a kill must not lose the write, and with one clear error when a
cache cannot be written.

Every file and folder the package writes goes through here: :func:`write_atomic` / :func:`write_json` for
small files, :func:`atomic_file` for files another library writes (weights, ``.npz`` caches),
:func:`atomic_folder` for folders (SavedModels), :func:`publish_folder` to replace a folder (zoo entries);
:func:`sha256` hashes them and :class:`CacheError` reports a cache that cannot be written.
:func:`ensure_room` refuses a write the disk (or the process's file-size limit) cannot hold before it
starts, :func:`check_writable` a folder that cannot be written and :func:`check_file_place` a folder where
a file is to be written. (One process at a time in a folder:
:mod:`relu_ratio.folder_lock`.)

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> write_json(Path(tempfile.mkdtemp()) / "a.json", {"top1": 0.9}).read_text()
    '{\\n  "top1": 0.9\\n}\\n'
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from relu_ratio import paths


class CacheError(OSError):
    """A cache under ``$RELU_RATIO_HOME`` could not be written (disk full, no permission, ...)."""


def cache_write_error(directory: Path, error: OSError) -> CacheError:
    """The error to raise when writing a cache file into ``directory`` failed with ``error``."""
    reason = error.strerror or str(error)  # the OS's wording or ours, without Python's "[Errno N]"
    where = f" ({error.filename})" if error.filename else ""
    remedy = "Free space there, or point" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "Point"
    return CacheError(
        error.errno,
        f"cannot write the cache in {directory}: {reason}{where}. {remedy} $RELU_RATIO_HOME at a writable "
        f"folder with room (it is {paths.home()}).",
    )


def sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_digest(folder: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``, to verify a cached folder before reuse."""
    root = Path(folder)
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def sync(path: str | os.PathLike) -> None:
    """Flush the file at ``path`` to the disk (``fsync``), so that it survives a power cut or a kill."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, e.g. ``.weights.h5``) to write; on success it
    replaces ``path`` (``os.replace``), on any error it is removed. ``durable``: ``fsync`` before replacing.

    Example:
        >>> with atomic_file(Path(tempfile.mkdtemp()) / "model.weights.h5") as tmp:  # doctest: +SKIP
        ...     model.save_weights(tmp)

    An ``OSError`` (from creating, writing or renaming the temporary file) names ``path``, the file the
    caller asked for, not the temporary one.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")  # unique
    except OSError as error:
        raise named(error, path) from error
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.chmod(0o644)  # mkstemp's file is private; what we write is readable like any other file
        yield tmp
        if durable:
            sync(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if type(error) is CacheError or error.filename not in (None, os.fspath(tmp), str(tmp)):
            raise  # already named, or about another file
        raise named(error, path) from error
    finally:
        tmp.unlink(missing_ok=True)


def named(error: OSError, path: str | os.PathLike) -> OSError:
    """``error`` naming ``path`` (the same errno, so the same subclass, e.g. ``FileNotFoundError``)."""
    if error.errno is None:
        return OSError(f"{os.fspath(path)}: {error}")
    return OSError(error.errno, os.strerror(error.errno), os.fspath(path))  # h5py's strerror: a page


def write_atomic(path: str | os.PathLike, content: str | bytes, durable: bool = False) -> Path:
    """Write ``content`` (bytes, or text as UTF-8) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, durable) as tmp:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, payload: dict, durable: bool = False) -> Path:
    """:func:`write_atomic` of ``payload`` as indented JSON (non-JSON values written with ``str``)."""
    return write_atomic(path, json.dumps(payload, indent=2, default=str) + "\n", durable)


def create_once(path: str | os.PathLike, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists (an exclusive create, on every filesystem, unlike a
    hard link); ``False`` if it did. Of two processes creating one file at once, one writes it and the other
    gets ``False``; a reader may meet the file empty or half written for a moment, and reads it again. A
    write that fails (a full disk) removes the file.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "record.json"
    >>> create_once(path, "{}"), create_once(path, "[]"), path.read_text()
    (True, False, '{}')
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
    except BaseException:  # a full disk: no empty file left to stand for a record or a lock
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return True


@contextlib.contextmanager
def folder_made(folder: str | os.PathLike) -> Iterator[Path]:
    """``folder`` made, with its missing parents, for the block; where the block raises, the folders made
    here are removed again if empty, so that a refused command leaves no folder behind.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with contextlib.suppress(ValueError), folder_made(root / "a" / "b"):
    ...     raise ValueError("refused")
    >>> (root / "a").exists()
    False
    """
    folder = Path(folder)
    made = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for path in made:
            with contextlib.suppress(OSError):  # filled meanwhile, or gone: the refusal is what is said
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        raise


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder path beside ``final`` to fill; then rename it to ``final``. If another
    process published ``final`` meanwhile, its copy is kept. Nothing temporary is left on any error."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield staging / final.name
        try:
            os.rename(staging / final.name, final)
        except OSError:
            if not final.exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_folder(staging: Path, final: Path, overwrite: bool) -> None:
    """Rename the finished folder ``staging`` to ``final``, replacing an existing ``final`` if ``overwrite``
    (the old one is moved aside first and restored if the rename fails). Raises ``OSError``."""
    old = None
    if final.exists() and overwrite:
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    try:
        os.rename(staging, final)
    except OSError:
        if old is not None:
            os.replace(old / final.name, final)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def read_text(path: str | os.PathLike) -> str:
    """The text of the UTF-8 file ``path``; a ``ValueError`` naming the file where it cannot be read or is
    not UTF-8 (a bare codec error names no file).

    >>> read_text("no such page.md")
    Traceback (most recent call last):
    ValueError: cannot read no such page.md: No such file or directory
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        where = f"{error.reason} at byte {error.start}"
        raise ValueError(f"cannot read {path}: it is not UTF-8 text ({where})") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None


def replace_between(path: str | os.PathLike, start: str, end: str, body: str, check: bool = False) -> bool:
    """Put ``body`` between the marker lines ``start`` and ``end`` of the text file ``path``:
    :func:`replace_blocks` with one pair."""
    return replace_blocks(path, {(start, end): body}, check)


def replace_blocks(path: str | os.PathLike, bodies: dict[tuple[str, str], str], check: bool = False) -> bool:
    """Put each body of ``bodies`` between its marker lines ``(start, end)`` in the text file ``path``, all
    in one write: a file that lacks any pair, holds one twice (or cannot be read) raises ``ValueError``
    naming it and is left as it was.

    Returns whether the file already held them; with ``check`` the file is never written.
    """
    path = Path(path)
    text = read_text(path)
    new = text
    for (start, end), body in bodies.items():
        first = new.find(start)
        last = new.find(end, first + len(start)) if first >= 0 else -1
        if last < 0:
            raise ValueError(f"{path} lacks the lines {start} ... {end} around the generated text.")
        if text.count(start) > 1:  # only the first would be written, the other left stale
            raise ValueError(f"{path} holds the line {start} {text.count(start)} times: keep one block "
                             f"{start} ... {end} for the generated text.")  # fmt: skip
        new = f"{new[: first + len(start)]}\n{body}\n{new[last:]}"
    if new != text and not check:
        write_atomic(path, new)
    return new == text


def ensure_room(path: str | os.PathLike, size: int) -> None:
    """Raise ``OSError`` (``ENOSPC`` or ``EFBIG``, naming ``path``) if a file of ``size`` bytes cannot be
    written at ``path``: its disk has less free space, or the process's file-size limit (``RLIMIT_FSIZE``,
    ``ulimit -f``) is lower. Checked before a library such as h5py starts writing, since h5py fails badly
    part-way (a flood of "Exception ignored" messages, then a crash at exit)."""
    path = Path(path)
    free = shutil.disk_usage(path.parent).free
    if free < size:
        raise OSError(errno.ENOSPC, f"No space left on device: {size / 1e6:.1f} MB needed, "
                      f"{free / 1e6:.1f} MB free", os.fspath(path))  # fmt: skip
    try:
        import resource
    except ImportError:  # not on Unix
        return
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and limit < size:
        raise OSError(errno.EFBIG, f"File too large: {size / 1e6:.1f} MB needed, the file-size limit "
                      f"(ulimit -f) is {limit / 1e6:.1f} MB", os.fspath(path))  # fmt: skip


def check_path(value: object, what: str) -> None:
    """Raise ``TypeError`` naming ``what`` unless ``value`` is a path (a ``str`` or ``os.PathLike``).

    >>> check_path(5, "data")
    Traceback (most recent call last):
    TypeError: data must be a path (a str or os.PathLike); received 5 (int).
    """
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path (a str or os.PathLike); received {value!r:.60} "
                        f"({type(value).__name__}).")  # fmt: skip


def names_nothing(path: str | os.PathLike) -> bool:
    """Whether ``path`` is empty (as a path, ``Path("")``, the current folder, which a user who gave it did
    not mean: that is ``"."``) or only blanks (a name nobody means).

    >>> names_nothing(""), names_nothing("  "), names_nothing(".")
    (True, True, False)
    """
    return not os.fspath(path).strip()


def names_one_entry(name: str) -> bool:
    """Whether ``name`` names one entry of a folder (a file or folder name): not blank
    (:func:`names_nothing`), no path separator, not ``.`` or ``..``.

    >>> names_one_entry("resnet20_21-seed0"), names_one_entry("../x"), names_one_entry("..")
    (True, False, False)
    """
    return not names_nothing(name) and Path(name).name == name and name != ".."


def visible_entries(folder: str | os.PathLike, ignore: tuple[str, ...] = ()) -> list[str]:
    """The sorted names in ``folder`` but hidden ones (a lock, ``.DS_Store``) and ``ignore``; none if it is
    no folder. What a command that would write there checks it holds of anyone else's."""
    folder = Path(folder)
    found = folder.iterdir() if folder.is_dir() else ()
    return sorted(p.name for p in found if not p.name.startswith(".") and p.name not in ignore)


def some(names: list[str], most: int = 5) -> str:
    """The first ``most`` of ``names``, comma-separated, with ``...`` for the rest: a message's short list.

    >>> some(["a", "b", "c"], most=2)
    'a, b, ...'
    """
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def may_replace(path: str | os.PathLike, first_line: str) -> bool:
    """Whether a command that writes pages starting ``first_line`` may write its page at ``path``: nothing is
    there, or an empty file, or one of those pages; never a file of anyone else's, a folder, a pipe or a
    device (an unreadable file: the OSError names it).

    >>> may_replace("no such page.md", "# Results")
    True
    """
    path = Path(path)
    if not path.exists():
        return True
    if not path.is_file():
        return False
    with path.open(errors="replace") as text:
        first = text.readline()
    return first == "" or first.rstrip("\r\n") == first_line


def nearest_existing(path: str | os.PathLike) -> Path:
    """``path`` itself or its nearest parent that exists (a file, where one stands on the path)."""
    path = Path(path)
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


def check_file_place(path: str | os.PathLike, what: str, remedy: str = "") -> None:
    """Raise ``ValueError`` naming ``path`` (``what`` it is, e.g. ``"report"``) where a folder, or anything
    but a file (a pipe, a device), stands in the place of the file a command writes there: the write would
    fail with Python's bare "[Errno 21] Is a directory", and often only after the work it reports on.
    Checked before that work; ``remedy`` (a sentence) says the way out.

    >>> place = Path(tempfile.mkdtemp()) / "results.csv"
    >>> place.mkdir()
    >>> check_file_place(place, "report", "Move it away.")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: cannot write the report .../results.csv: it is a folder, not a file. Move it away.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "neither a file nor a folder"
        way_out = f" {remedy}" if remedy else ""
        raise ValueError(f"cannot write the {what} {path}: it is {kind}, not a file.{way_out}")


def check_writable(folder: str | os.PathLike, what: str = "folder") -> None:
    """Raise ``ValueError`` naming ``folder`` (``what`` it is, e.g. ``"output directory"``) if it cannot be
    made or written: a file on its path, or its nearest existing folder not writable (by its permissions, or
    where a folder made there to try fails). Cheap, so a command checks before it loads data or starts a
    library that would fail there with its own error."""
    folder = Path(folder)
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise ValueError(f"cannot write to the {what} {folder}: {existing} is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to the {what} {folder}: {existing} is not writable.")
    try:  # what permissions do not say: a read-only file system, /proc, root's writes refused
        tried = tempfile.mkdtemp(prefix=".relu_ratio-write-check-", dir=existing)
    except OSError as error:
        raise ValueError(f"cannot write to the {what} {folder}: {existing} is not writable "
                         f"({error.strerror or error}).") from None
    with contextlib.suppress(OSError):  # made: writable, whatever becomes of the folder now
        os.rmdir(tried)
