"""One process at a time in a folder (a training run, a training queue's runs): :func:`locked_folder`.

Example:
    >>> import tempfile
    >>> with locked_folder(tempfile.mkdtemp(), "run folder") as folder:  # a second process is refused here
    ...     pass
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from relu_ratio.files import check_writable, create_once
from relu_ratio.user_warning import warn

LOCK_FILE = ".lock"
_held: dict[str, list] = {}  # lock file (real path) -> [token, depth, created folder] held by this process
_held_guard = threading.Lock()


class FolderInUse(ValueError):
    """Another process holds the folder (its lock file names the process)."""


def locked_folder(folder: str | os.PathLike, what: str = "folder") -> contextlib.AbstractContextManager[Path]:
    """Context: hold ``folder`` (created if missing) for this process; raises :class:`FolderInUse` naming
    the folder and the holder (pid, host, since when, command) if another live process holds it.

    The lock is the file ``folder/.lock``, created atomically (``O_CREAT | O_EXCL``) with the holder's pid,
    host and process start time, and removed on every exit path (an error, Ctrl-C). A lock whose process is
    gone (same host, pid not running, or running a process started at another time) was left by a kill: it
    is taken over with a warning. One on another host is never taken over (its process cannot be checked);
    the message says which file to delete. Re-entrant within a process (the queue holds a run's folder while
    :func:`relu_ratio.train.run` takes it again). A folder created here and left empty is removed.
    ``what`` names the folder in messages (e.g. ``"run folder"``).
    """
    return _FolderLock(Path(folder), what)


def check_folder_free(folder: str | os.PathLike, what: str = "folder") -> None:
    """Raise :class:`FolderInUse` if another live process holds ``folder`` (see :func:`locked_folder`);
    writes nothing, so a second process is refused before it does any work."""
    path = Path(folder) / LOCK_FILE
    if path.exists() and _key(path) not in _held:
        text, holder = _read_lock(path)
        if holder is None or not _stale(holder):
            raise _in_use(Path(folder), what, path, holder, text)


class _FolderLock(contextlib.AbstractContextManager):
    """What :func:`locked_folder` returns: the lock of one folder, re-entrant within a process."""

    def __init__(self, folder: Path, what: str):
        self.folder, self.what, self.path = folder, what, folder / LOCK_FILE

    def __enter__(self) -> Path:
        check_folder_free(self.folder, self.what)  # first: the writing check tries a folder inside
        check_writable(self.folder, self.what)
        created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        key = _key(self.path)
        with _held_guard:
            if key in _held:
                _held[key][1] += 1
                return self.folder
            token = uuid.uuid4().hex
            try:
                self._take(token)
            except BaseException:
                if created:
                    with contextlib.suppress(OSError):
                        self.folder.rmdir()
                raise
            _held[key] = [token, 1, created]
        return self.folder

    def __exit__(self, *exc) -> bool:
        key = _key(self.path)
        with _held_guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1]:
                return False
            del _held[key]
        _, holder = _read_lock(self.path)
        if holder is not None and holder.get("token") == entry[0]:
            self.path.unlink(missing_ok=True)
        if entry[2]:
            with contextlib.suppress(OSError):  # not empty: something was written
                self.folder.rmdir()
        return False

    def _take(self, token: str) -> None:
        """Create the lock file (or take over a stale one); raise FolderInUse if a live process holds it."""
        pid = os.getpid()
        holder = {"pid": pid, "host": socket.gethostname(), "process_start": _process_start(pid),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv),
                  "token": token}  # fmt: skip
        for _ in range(5):
            if create_once(self.path, json.dumps(holder)):
                return
            text, old = _read_lock(self.path)
            if text is None:
                continue  # removed meanwhile: try again
            if old is None or not _stale(old):
                raise _in_use(self.folder, self.what, self.path, old, text)
            warn(f"{self.path}: taking over the lock of {_describe(old)}, which no longer runs (killed?).")
            _remove_if_unchanged(self.path, text)
        raise FolderInUse(f"the {self.what} {self.folder} could not be locked ({self.path} keeps changing).")


def _key(path: Path) -> str:
    return os.path.realpath(path)


def _read_lock(path: Path) -> tuple[str | None, dict | None]:
    """``(text, holder)``: ``text`` None if the file is gone; ``holder`` None if it is not a lock's JSON (a
    process creates the file and then writes it: wait for that a moment)."""
    for _ in range(20):
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None, None
        except OSError:
            return "", None
        try:
            holder = json.loads(text)
        except ValueError:
            time.sleep(0.05)
            continue
        if isinstance(holder, dict) and isinstance(holder.get("pid"), int) and "host" in holder:
            return text, holder
        break
    return text, None


def _process_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux; ``[]`` elsewhere or if gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    fields = _process_stat(pid)
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _stale(holder: dict) -> bool:
    """Whether the lock's process is gone: on this host, its pid does not run, is a zombie, or is a newer
    process (another start time: the pid was reused)."""
    if holder["host"] != socket.gethostname():
        return False
    pid = holder["pid"]
    if pid == os.getpid():
        return True  # this process holds no such lock (it is not in _held): left by an earlier one
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # runs, as another user
    stat = _process_stat(pid)
    if stat[:1] == ["Z"]:
        return True  # killed, not yet reaped by its parent
    started = holder.get("process_start")
    return started is not None and _process_start(pid) not in (None, started)


def _remove_if_unchanged(path: Path, text: str) -> None:
    """Remove the stale lock ``path`` if it still holds ``text``; of several processes taking it over at once,
    one moves it aside (``os.rename`` is atomic) and a lock created meanwhile is put back."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        if aside.read_text() != text:  # a new holder's lock: give it back
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def _describe(holder: dict | None) -> str:
    if holder is None:
        return "an unknown process"
    command = f", running {holder['command']!r}" if holder.get("command") else ""
    return f"process {holder['pid']} on {holder['host']} (since {holder.get('since', '?')}{command})"


def _in_use(folder: Path, what: str, path: Path, holder: dict | None, text: str | None) -> FolderInUse:
    if holder is None:
        return FolderInUse(f"the {what} {folder} is locked, but its lock {path} is unreadable ({text!r}): if "
                           "no process uses the folder, delete the lock and start again.")  # fmt: skip
    here = holder["host"] == socket.gethostname()
    gone = "" if here else f" If that process no longer runs on {holder['host']}, delete {path}."
    return FolderInUse(f"the {what} {folder} is in use by {_describe(holder)}; wait for it to finish or "
                       f"stop it.{gone}")  # fmt: skip
