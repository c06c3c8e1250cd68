"""A run folder packed into one file, to go on elsewhere: :func:`pack` and :func:`take_back`.

A finished run is packed with its record and final weights; a cut-off run with its committed backup (never
a newer file a kill may have left half-written), so that it resumes where it was. ``training/gpu_pair.py``
carries runs this way to and from a GPU; ``float16=True`` packs a run at about a quarter of the size (its
weights in float16, SGD's momentum restarted), so that it can be committed to the repository
(``training/kept/``) and the queue on another machine takes it back and resumes it
(:func:`relu_ratio.queue.run`).

Example:
    >>> archive = pack(Path("runs/resnet20_21-seed0"), Path("kept"), float16=True)  # doctest: +SKIP
    >>> take_back(archive, Path("elsewhere"))  # doctest: +SKIP
    'resnet20_21-seed0'
"""

from __future__ import annotations

import contextlib
import gzip
import os
import platform
import tarfile
import tempfile
import zlib
from pathlib import Path

from relu_ratio import files
from relu_ratio.folder_lock import locked_folder
from relu_ratio.train.callbacks import Backup, batches_done
from relu_ratio.train.record import (
    BACKUP_FOLDER,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    WEIGHTS_FILE,
    RunRecord,
)
from relu_ratio.zoo.publish import write_float16

SUFFIX = ".tar.gz"  # a packed run's file name: <run id>.tar.gz
RUN_KEEP = (CONFIG_FILE, RESULT_FILE, METRICS_FILE, PROGRESS_FILE, WEIGHTS_FILE, LOG_FILE)  # and a backup


class NotFurther(ValueError):
    """:func:`take_back` left the run folder as it is: it holds the run finished, or as far as the archive
    or further."""


def packed_path(folder: Path, run_id: str) -> Path:
    """Where :func:`pack` puts the run ``run_id`` in ``folder``: ``folder/<run id>.tar.gz``; a ``ValueError``
    for a ``run_id`` that is no folder name (``../x``), which would name a file elsewhere."""
    if not files.names_one_entry(run_id):
        raise ValueError(f"{run_id!r} is no run id: a run folder's name, such as resnet20_21-seed0")
    return folder / f"{run_id}{SUFFIX}"


def pack(run: Path, out: Path, *, float16: bool = False) -> Path:
    """``out/<run>.tar.gz``: a finished run's record and weights; for a cut-off run also its backup record
    and the checkpoint that record names (never a newer file a kill may have left half-written).

    ``float16``: about a quarter of the size, what can be committed to keep a run between machines: a
    cut-off run's backup goes in as :func:`float16_backup` makes it, a finished run's weights in float16
    (as ``zoo register`` stores and measures them), noted in the packed ``train.log``."""
    names = [run / n for n in RUN_KEEP if (run / n).is_file()]
    record_path = Backup.record_path(run)
    cut_off = not (run / RESULT_FILE).is_file() and record_path.is_file()
    if cut_off and not float16:
        names += [record_path, backup_checkpoint(run)]
    members = {path.relative_to(run): path for path in names}
    target = packed_path(out, run.name)
    scratch = tempfile.TemporaryDirectory(prefix="relu_ratio-pack-") if float16 else None
    with scratch or contextlib.nullcontext():
        if scratch is not None:  # what it writes replaces the run's own (train.log, with the note)
            made = (float16_backup if cut_off else float16_weights)(run, Path(scratch.name))
            members |= {path.relative_to(scratch.name): path for path in made}
        with files.atomic_file(target) as written, tarfile.open(written, "w:gz") as tar:
            for where, path in members.items():
                tar.add(path, arcname=str(Path(run.name, where)))
    return target


def float16_backup(run: Path, scratch: Path) -> list[Path]:
    """The cut-off ``run``'s committed backup, written into ``scratch`` as it is packed with ``--float16``:
    the checkpoint with its weights in float16 and the optimizer's momentum restarted (zeros; the step count
    kept, so the learning-rate schedule goes on where it was: :func:`~relu_ratio.zoo.publish.write_float16`),
    the backup record naming it (and no earlier backup to fall back to), and ``train.log`` with a line that
    says so. A ``ValueError`` for a run trained with ``--ema``, whose weight average is kept with the
    optimizer's state."""
    if RunRecord.read(run).config.get("ema") is not None:
        raise ValueError(f"{run}: trained with --ema, whose weight average is kept with the optimizer's "
                         "state that --float16 restarts: pack it without --float16.")  # fmt: skip
    checkpoint = backup_checkpoint(run)
    (scratch / BACKUP_FOLDER).mkdir()
    half = scratch / BACKUP_FOLDER / checkpoint.name
    write_float16(checkpoint, half, restart_optimizer=True)
    record = {**Backup.read_record(run / BACKUP_FOLDER), "sha256": files.sha256(half), "previous": None}
    files.write_json(Backup.record_path(scratch), record)
    what = f"packed after {_said(how_far(run))} with its weights in float16 and its momentum restarted"
    return [half, Backup.record_path(scratch), _noted_log(run, scratch, what)]


def float16_weights(run: Path, scratch: Path) -> list[Path]:
    """The finished ``run``'s ``model.weights.h5`` written into ``scratch`` in float16, as ``zoo register``
    stores and measures them (:func:`~relu_ratio.zoo.publish.write_float16`), and ``train.log`` with a line
    that says so; nothing for a run without weights."""
    if not (run / WEIGHTS_FILE).is_file():
        return []
    write_float16(run / WEIGHTS_FILE, scratch / WEIGHTS_FILE)
    return [scratch / WEIGHTS_FILE, _noted_log(run, scratch, "packed with its final weights in float16")]


def _noted_log(run: Path, scratch: Path, what: str) -> Path:
    """``scratch/train.log``: the run's own, and a line saying what ``--pack --float16`` did."""
    log = run / LOG_FILE
    note = f"relu_ratio: {what} (relu_ratio.train.archive.pack, float16=True).\n"
    (scratch / LOG_FILE).write_text((log.read_text() if log.is_file() else "") + note)
    return scratch / LOG_FILE


def how_far(run: Path) -> tuple[int, int]:
    """``(epochs, batches of the next)`` that the run folder ``run`` holds: its committed backup's, else
    the epochs its metrics log (a finished run packed without its backups, or no run: ``(0, 0)``)."""
    backup = Backup.read_record(run / BACKUP_FOLDER)
    return (backup["epoch"], batches_done(backup)) if backup else (RunRecord.read(run).epochs_done, 0)


def _said(far: tuple[int, int]) -> str:
    """:func:`how_far`'s answer in words: ``"3 epochs and 18 batches"``."""
    epochs, batches = far
    return f"{epochs} epochs" + (f" and {batches} batches" if batches else "")


def backup_checkpoint(run: Path) -> Path:
    """The checkpoint the run's committed backup record (``backup/training_metadata.json``) names; a
    ``ValueError`` naming the record where it is unreadable, names no file, or names one that is missing."""
    record_path = Backup.record_path(run)
    backup = record_path.parent
    name = (Backup.read_record(backup) or {}).get("weights")  # the training CLI's checked reader
    if not isinstance(name, str) or not files.names_one_entry(name):
        raise ValueError(f"{record_path} cannot be read as a backup record ('weights': {name!r}, not a "
                         "file name)")
    if not (backup / name).is_file():
        raise ValueError(f"{record_path} names the checkpoint {name}, which is not in {backup}")
    return backup / name


def take_back(archive: Path, runs: Path) -> str:
    """Unpack ``archive`` (``<run id>.tar.gz``, made by :func:`pack`) into ``runs``, holding the run
    folder's lock while it does; returns the run id. Refused (``ValueError``, naming the run, its folder left
    as it is): a missing or damaged archive, one that does not hold the folder ``<run id>/`` (renamed after
    packing) or holds more, a folder another live process holds
    (:class:`~relu_ratio.folder_lock.FolderInUse`: the queue training that run), one with a damaged run file,
    and (:class:`NotFurther`) one where the run is finished or as far as the packed one or further."""
    run_id = archive.name.removesuffix(SUFFIX)
    if not archive.is_file():
        raise ValueError(f"{archive}: no such packed run")
    target = runs / run_id
    files.check_writable(runs, "folder of runs")  # --runs may not exist yet: unpacked beside where it will be
    with tempfile.TemporaryDirectory(dir=files.nearest_existing(runs), prefix=".take-back-") as scratch:
        unpacked = _unpack(archive, Path(scratch), run_id)  # read whole before the run folder is made
        with locked_folder(target, "run folder"):
            _move_in(archive, unpacked, target)
    return run_id


def _unpack(archive: Path, scratch: Path, run_id: str) -> Path:
    """Extract ``archive`` into ``scratch``: the run folder ``<run id>/`` it holds. ``ValueError`` (one line,
    naming the archive) for one that is not a readable tar.gz or holds anything but that folder, and where
    this Python's ``tarfile`` lacks the filter that keeps an archive's members inside ``scratch``."""
    if not hasattr(tarfile, "data_filter"):
        raise ValueError(f"{archive}: taking back a packed run needs tarfile's extraction filters, which "
                         f"Python {platform.python_version()} lacks (3.10.12, 3.11.4, 3.12 or later have "
                         "them); not unpacked.")  # fmt: skip
    try:  # a damaged archive; an OSError of the disk here (full, say) is not the archive's fault
        with tarfile.open(archive, "r:gz") as tar:  # packed as such: one reason, not one per format tried
            tar.extractall(scratch, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(f"{archive} cannot be read as a packed run ({error}); not unpacked.") from None
    unpacked = scratch / run_id
    held = sorted(path.name for path in scratch.iterdir())
    if not unpacked.is_dir():
        raise ValueError(f"{archive} holds {held}, not the run folder {run_id}/ its name says (was it "
                         "renamed?); not unpacked.")  # fmt: skip
    if held != [run_id]:  # pack writes the run folder only: the rest is another's, which would be dropped
        raise ValueError(f"{archive} holds {held}, more than the run folder {run_id}/ that pack writes; "
                         "not unpacked.")  # fmt: skip
    return unpacked


def _move_in(archive: Path, unpacked: Path, target: Path) -> None:
    """Move the files of ``unpacked`` into the run folder ``target`` (whose lock the caller holds), unless
    either holds a damaged run (``ValueError``), or ``target`` a finished one or a cut-off one as far as a
    cut-off ``unpacked`` or further (:class:`NotFurther`: a float16 pack taken back over the state it was
    packed from would only lose precision)."""
    incoming, here = RunRecord.read(unpacked), RunRecord.read(target)
    if incoming.damage:
        raise ValueError(f"{archive} holds a damaged run ({'; '.join(incoming.damage)}); not unpacked.")
    if here.damage:
        raise ValueError(f"{target}: {'; '.join(here.damage)}; {archive.name} not unpacked.")
    ours, theirs = how_far(target), how_far(unpacked)
    if here.state == "finished" or (incoming.state != "finished" and ours != (0, 0) and ours >= theirs):
        raise NotFurther(
            f"{target} holds {_said(ours)} ({here.state}) and {archive.name} {_said(theirs)}: not unpacked, "
            "the folder is left as it is."
        )
    # config.json first: a folder cut off part-way holds a run's config (train resumes it), never a
    # run's files without it (which train refuses as another's); the backup record last: a folder cut off
    # before it keeps its own backup with its own metrics and hours, never the new backup with old ones
    first_last = {CONFIG_FILE: 0, Backup.RECORD: 2}
    for path in sorted(unpacked.rglob("*"), key=lambda path: (first_last.get(path.name, 1), path)):
        if path.is_file():
            destination = target / path.relative_to(unpacked)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
