"""Weights kept in git: an entry registered without its weights file (``zoo register --weights-in-git``)
names the git object that holds it, ``<commit>:<path>`` (:attr:`ZooEntry.weights_git_object`), and
:func:`fetch` writes that object into the entry's folder, after checking it against the registered sha256.

Example:
    >>> from relu_ratio import zoo
    >>> zoo.fetch(name)                    # an entry registered with --weights-in-git  # doctest: +SKIP
    PosixPath('.../zoo/<name>/model.weights.h5')
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from relu_ratio import files, provenance
from relu_ratio.zoo import registry
from relu_ratio.zoo.entry import IntegrityError, ZooError


class GitFailed(ZooError):
    """A git command ran and failed (git's own message), as opposed to git that cannot be run."""


def resolve(store: Path, spec: str, sha256: str) -> str:
    """``spec`` (``<revision>:<path from the repository's root>``) as ``<full commit>:<path>``, after
    checking that git, in the repository that holds ``store``, gives for it a file of ``sha256``."""
    revision, _, path = spec.partition(":")
    if not revision or not path or revision.startswith("-") or path.startswith(("./", "../")):
        raise ZooError(
            "weights in git are named '<revision>:<path from the repository's root>' (e.g. "
            f"HEAD:zoo/preact164_32/model.weights.h5); received {spec!r}."
        )
    try:
        commit = git(store, "rev-parse", "--verify", f"{revision}^{{commit}}").decode().strip()
    except GitFailed as error:
        raise ZooError(
            f"cannot find commit {revision!r} for the store {store} (a mistyped revision, nothing committed "
            f"yet, or a store outside a git repository): {error}"
        ) from None
    kept = hashlib.sha256(git(store, "show", f"{commit}:{path}")).hexdigest()
    if kept != sha256:
        raise ZooError(
            f"git object {spec} is not the weights being registered: its sha256 is {kept}, the float16 file "
            f"to register has {sha256}. Name the weights file of a zoo entry (<store>/<name>/"
            "model.weights.h5, its path from the repository's root) at a commit where it holds these weights."
        )
    return f"{commit}:{path}"


def ignore_fetched(folder: Path, weights_file: str) -> None:
    """Write ``folder/.gitignore`` naming ``weights_file``: the entry's weights, once fetched, are git's copy
    of a committed file, so that ``git add`` never commits them a second time."""
    (folder / ".gitignore").write_text(
        f"# {weights_file} is written by zoo fetch from git's history (metadata.json: weights_git_object)\n"
        f"/{weights_file}\n",
        encoding="utf-8",
    )


def fetch(name: str) -> Path:
    """Write the weights file of zoo entry ``name``, registered without it, into its folder from the git
    history of the repository that holds the store; checked against the registered sha256 first, written
    atomically. Returns its path.

    Raises:
        ZooError: the entry has its file anyway, or git cannot give the object (a store outside a clone, a
            shallow clone), naming what to do instead.
        IntegrityError: git's copy is not the file that was registered.
    """
    entry = registry.info(name)
    path = registry.entry_dir(name) / entry.weights_file
    if not entry.weights_git_object:
        raise ZooError(f"zoo entry {name!r} was registered with its weights file ({path}): nothing to fetch.")
    try:
        blob = git(path.parent, "show", entry.weights_git_object)
    except ZooError as error:
        raise ZooError(
            f"cannot fetch the weights of {name!r}: {error} It takes the store inside a clone of the "
            "repository with its history (not a shallow clone: git fetch --unshallow); without one, train "
            "the weights again (the entry's model card gives the command)."
        ) from None
    actual = hashlib.sha256(blob).hexdigest()
    if actual != entry.sha256:
        raise IntegrityError(
            f"git object {entry.weights_git_object} is not the weights file registered for {name!r}: "
            f"sha256 {actual}, registered {entry.sha256}. Nothing was written."
        )
    return files.write_atomic(path, blob)


def git(folder: Path, *args: str) -> bytes:
    """What ``git -C folder <args>`` writes (:func:`relu_ratio.provenance.git`); a :class:`ZooError` where
    git cannot be run or gives no answer in time, a :class:`GitFailed` with git's message where it fails."""
    try:
        return provenance.git(folder, *args)
    except OSError as error:
        raise ZooError(f"cannot run git (for weights kept in git): {error.strerror or error}.") from None
    except subprocess.TimeoutExpired as error:
        raise ZooError(f"{' '.join(error.cmd)} gave no answer in {error.timeout:g} s.") from None
    except subprocess.CalledProcessError as error:
        said = error.stderr.decode(errors="replace").strip() or f"exit status {error.returncode}"
        raise GitFailed(f"{' '.join(error.cmd)} failed: {said}.") from None
