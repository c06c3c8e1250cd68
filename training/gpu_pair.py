"""Train the training queue's next runs side by side on one GPU, in one command (a --resume if cut off).

Made for a GPU held for minutes, one command at a time (training/README.md, "On a GPU: gpu_pair.py"): this
script does the whole job inside one command:

1. takes the queue's next runs that are not finished (``--count`` of them, in the queue's order, skipping
   those in its record of finished runs), or the runs named with ``--run-ids`` (with ``--resume``, by
   default those packed there), with the queued settings;
2. decodes the dataset once into the cache the runs share, then runs ``python -m relu_ratio.train`` for
   all of them at once, each with its queued settings (seed, epochs, recipe), which on a GPU take the
   device path (``augment_on`` and ``mixed_precision`` ``auto``: uint8 batches, the augmentation inside
   the compiled step, ``mixed_bfloat16``) with ``--steps-per-execution`` steps per call, backups at epoch
   ends, recording ``--commit`` as the runs' source commit (the device's copy of the tree may carry a
   stale ``.git``);
3. packs each run folder into ``OUT/<run id>.tar.gz`` before ``--deadline-s``: a finished run without its
   backups, a run cut off at the deadline with its last committed backup. ``--resume DIR`` (the packed
   runs, carried back: every run packed there, or those of ``--run-ids``) takes them back as
   ``--take-back`` does (below) and finishes them with the same command.

The folders are named as the queue names them (``preact164_type2-seed0``), so on the queue's machine
``python3 training/gpu_pair.py --take-back <folder of packed runs> --runs ~/relu_runs/zoo`` puts each run
where ``python -m relu_ratio.queue run`` skips it when finished and finishes it when cut off (a run keeps
the way it started: precision, augmentation). It holds each run folder's lock while it unpacks, so a run
the queue is training there is refused; one there as far as packed or further is left, with a note. The
other way, a run the CPU queue has cut off goes to the device packed by ``--pack <folder>`` (the queue
stopped first), which also says what the device call would then carry against the 64 MiB one carries.
``--pack <folder> --float16`` packs a cut-off run at about a quarter of the size (its weights in float16,
SGD's momentum restarted; a finished run's final weights in float16), to commit it so that the queue on
another machine resumes it (training/README.md, "Keeping a run when the machine changes").

Exit status: 0 when every run finished, 3 when a run was cut off at the deadline (packed for ``--resume``),
1 when a run failed, 2 for a mistake in the command or a refused ``--pack`` or take-back (nothing trained).

Example (on the GPU machine, in a checkout installed with ``pip install -e ".[jax]"``, the CIFAR-10 JPEG
archives in ``.data``)::

    KERAS_BACKEND=jax python3 training/gpu_pair.py --out $OUT --dataset .data --deadline-s 560 --commit <sha>
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relu_ratio import data, files, flags, queue, train
from relu_ratio.folder_lock import FolderInUse, locked_folder
from relu_ratio.train.archive import SUFFIX, NotFurther, backup_checkpoint, pack, packed_path, take_back
from relu_ratio.train.callbacks import Backup
from relu_ratio.train.record import LOG_FILE

QUEUE = Path(__file__).with_name("queue.json")
ROOT = Path(__file__).resolve().parents[1]  # the checkout a device call sends
CARRY_LIMIT = 64 * 2**20  # what one device call carries: the tracked tree, the untracked and carried files
TREE_LIMIT = 45e6  # bytes: what the repository's tracked tree keeps under (with a run kept by --float16)
TRAINING_SETTINGS = {  # flags of a training command only, with their defaults
    "dataset": ".data", "steps_per_execution": 32, "deadline_s": 560.0, "train_subset": None,
    "test_subset": None, "augment_on": None}  # fmt: skip
PACKING_S = 10  # seconds before --deadline-s at which the runs still training are stopped and packed
NEXT_RUNS = 2  # runs trained at once (a pair) unless --count or --run-ids says otherwise
PREPARED = (".whl", ".data")  # git-ignored folders of wheels and data that travel with the tree to a GPU


def chosen_runs(queue_path: Path, run_ids: list[str] | None, count: int) -> list[queue.QueuedRun]:
    """The runs to train: those named in ``run_ids`` (in that order), else the first ``count`` queued runs
    that the queue's record of finished runs does not hold. A recorded run queued for the zoo but not yet
    registered is not taken: from here, a run finished on the queue's machine (waiting for its twin, say)
    looks the same as one whose folder was lost (which ``queue run`` trains again); name the latter with
    ``run_ids``. Raises ``ValueError`` for an unknown id."""
    queued = queue.load(queue_path)
    if run_ids:
        by_id = {item.run_id: item for item in queued}
        unknown = [run_id for run_id in run_ids if run_id not in by_id]
        if unknown:
            raise ValueError(f"not in {queue_path}: {unknown}; queued: {', '.join(by_id)}")
        if len(set(run_ids)) < len(run_ids):
            raise ValueError(f"a run is named twice: {run_ids}")
        return [by_id[run_id] for run_id in run_ids]
    finished = queue.read_record(queue.finished_path(queue_path)).runs
    return [item for item in queued if item.run_id not in finished][:count]


def train_command(item: queue.QueuedRun, runs: Path, args: argparse.Namespace) -> list[str]:
    """The training CLI's command for one queued run on the device path (the same when it resumes)."""
    config = item.config(runs, args.dataset)
    # settings a run may change when it resumes elsewhere; "augment_on": "auto" (queued) is the device here
    device = {"steps_per_execution": args.steps_per_execution,
              "backup_every": 1_000_000}  # backups at epoch ends only  # fmt: skip
    trying_out = (("train_subset", args.train_subset), ("test_subset", args.test_subset),
                  ("augment_on", args.augment_on))
    for setting, value in trying_out:
        if value is not None:  # a 0 is refused by the training config, never dropped
            device[setting] = value
    command = train.command_for(train.TrainConfig(**{**config.__dict__, **device}).resolved())
    return [sys.executable, *shlex.split(command)[1:], "--verbose", "2"]  # command_for leaves verbose out


def pack_to_carry(
    items: list[queue.QueuedRun], runs: Path, folder: Path, *, float16: bool = False
) -> list[Path]:
    """Here, before a window: pack each of ``items``' cut-off run folders in ``runs`` into ``folder`` (to
    name in the device call's ``carry``, git-ignored) for ``--resume``, holding each run folder's lock while
    it does (``float16``: as :func:`pack` says). All or nothing: the runs are packed into a scratch folder
    inside ``folder`` and moved in only when every one is, so a refusal leaves ``folder`` as it was. Refused
    (``ValueError`` naming the run; :class:`FolderInUse` for a run the queue is training, stop it first): a
    run that is not there, damaged, or whose backup cannot be read, and a finished one (but with
    ``float16``: kept that way until it is registered)."""
    with tempfile.TemporaryDirectory(dir=folder, prefix=".pack-") as scratch:
        packed = []
        for item in items:
            run = runs / item.run_id
            record = train.RunRecord.read(run)
            if record.damage or (record.state == "finished" and not float16):
                why = "; ".join(record.damage) or "finished: register it"
                raise ValueError(f"{run}: {why}; not packed.")
            if record.state != "finished":
                if not Backup.record_path(run).is_file():
                    raise ValueError(f"{run}: no backup to resume from; not packed.")
                backup_checkpoint(run)  # readable, and the checkpoint it names is there
            with locked_folder(run, "run folder"):
                packed.append(pack(run, Path(scratch), float16=float16))
        for path in packed:
            os.replace(path, folder / path.name)
    return [folder / path.name for path in packed]


def carried_bytes(folder: Path) -> dict[str, int]:
    """What a device call would carry, by part: the working tree (tracked files, and untracked ones git does
    not ignore), the wheels and data folders (PREPARED) and ``folder``."""
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(command, cwd=ROOT, capture_output=True, check=True).stdout
    folder = folder.resolve()
    tree = [ROOT / name for name in listed.decode().split("\0") if name]  # not counting folder twice
    parts = {"working tree": sum(path.stat().st_size for path in tree
                                 if path.is_file() and not path.is_relative_to(folder))}  # fmt: skip
    for part in (*(ROOT / name for name in PREPARED), folder):
        parts[part.name] = sum(path.stat().st_size for path in part.rglob("*") if path.is_file())
    return parts


def packed_run_ids(folder: Path) -> list[str]:
    """The runs packed in ``folder`` (its ``<run id>.tar.gz`` files), in name order; a ``ValueError`` where
    there is none (naming the folder to give where ``folder`` is an archive)."""
    run_ids = sorted(path.name.removesuffix(SUFFIX) for path in folder.glob(f"*{SUFFIX}"))
    if not run_ids:
        hint = f" (give its folder, {folder.parent})" if folder.name.endswith(SUFFIX) else ""
        raise ValueError(f"{folder}: no <run id>.tar.gz there{hint}")
    return run_ids


def take_back_all(archives: list[Path], runs: Path, p: argparse.ArgumentParser) -> None:
    """:func:`take_back` of each archive in turn, once all are there: a missing one ends the command before
    any is unpacked, the first refused one ends it there (exit 2); one whose run is there as far or
    finished is left packed, with a note, and the others are taken back."""
    missing = [str(archive) for archive in archives if not archive.is_file()]
    if missing:
        p.error(f"no such packed run: {', '.join(missing)}")
    for archive in archives:
        try:
            print(f"unpacked {take_back(archive, runs)} into {runs}", flush=True)
        except NotFurther as note:
            print(f"note: {note}", file=sys.stderr, flush=True)
        except (FolderInUse, ValueError, OSError) as error:  # OSError: the disk (full, unwritable)
            p.error(str(error))


def decode(dataset: str) -> None:
    """Decode both splits once into the cache the runs share."""
    data.load(dataset, "test")
    data.load(dataset, "train")


def pack_command(args: argparse.Namespace, p: argparse.ArgumentParser) -> int:
    """``--pack``: the chosen runs packed to carry, and what a device call would then carry (with
    ``--float16``: packed to commit, and what the tracked tree would then hold). Refused, the folder left as
    it was: a folder outside the checkout (a call carries only the checkout), a run already packed there,
    and a total over :data:`CARRY_LIMIT` (the call would be refused; with ``--float16``, a tree over
    :data:`TREE_LIMIT`)."""
    folder = Path(args.pack).resolve()
    if not folder.is_relative_to(ROOT) or folder == ROOT or ".git" in folder.relative_to(ROOT).parts:
        p.error(f"--pack {args.pack}: the folder must be inside the checkout ({ROOT}), which is all a device "
                "call carries, and outside its .git, e.g. --pack .carry")  # fmt: skip
    try:
        files.check_writable(folder, "--pack folder")
        items = chosen_runs(Path(args.queue), args.run_ids, args.count)
        there = [str(path) for item in items if (path := packed_path(folder, item.run_id)).exists()]
        if there:
            raise ValueError(f"already packed: {', '.join(there)}; remove it first to pack the run again")
        with files.folder_made(folder):  # removed again, if made here, where the runs are refused
            packed = pack_to_carry(items, Path(args.runs), folder, float16=args.float16)
            try:
                parts = carried_bytes(folder)
                total, said = sum(parts.values()), ", ".join(f"{k} {v / 2**20:.1f}" for k, v in parts.items())
                tree = parts["working tree"] + parts[folder.name]  # what a commit of the packed runs makes
                if args.float16 and tree >= TREE_LIMIT:
                    raise ValueError(f"the tracked tree would hold {tree / 1e6:.1f} MB with {folder.name}/, "
                                     f"more than the {TREE_LIMIT / 1e6:.0f} MB it keeps under: not packed "
                                     '(training/README.md, "Room for the weights")')  # fmt: skip
                if not args.float16 and total >= CARRY_LIMIT:
                    raise ValueError(f"a device call would carry {total / 2**20:.1f} MiB ({said}), more than "
                                     f"the {CARRY_LIMIT / 2**20:.0f} MiB one carries: not packed "
                                     '(training/README.md, "Room for the weights")')  # fmt: skip
            except BaseException:
                for path in packed:
                    path.unlink()
                raise
    except (FolderInUse, ValueError, OSError, subprocess.CalledProcessError) as error:
        p.error(str(error))
    for path in packed:
        print(f"packed {path.relative_to(ROOT)} ({path.stat().st_size / 2**20:.1f} MiB)")
    where = folder.relative_to(ROOT)
    if args.float16:
        added = " ".join(str(path.relative_to(ROOT)) for path in packed)
        print(f"the tracked tree would hold {tree / 1e6:.1f} of {TREE_LIMIT / 1e6:.0f} MB; commit it: "
              f"git add {added}")  # fmt: skip
        return 0
    print(f"a device call would carry {total / 2**20:.1f} of {CARRY_LIMIT / 2**20:.0f} MiB ({said}): name "
          f"{where} in its carry and add --resume {where} to its gpu_pair.py command")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = flags.Parser(prog="python training/gpu_pair.py", description=__doc__.split("\n")[0])
    p.add_argument("--queue", type=flags.path, help="the training queue (default: training/queue.json; not "
                   "with --take-back, which takes back what its folder holds)")  # fmt: skip
    p.add_argument("--run-ids", nargs="+", help="train (or --pack) these queued runs (default: the next "
                   "--count ones; with --resume, those packed there); with --take-back, take back only these")
    p.add_argument("--count", type=int, help="how many of the queue's next runs at once (default: "
                   f"{NEXT_RUNS}; not with --run-ids, --resume or --take-back, which take the runs named or "
                   "packed)")  # fmt: skip
    p.add_argument("--dataset", help="the folder holding the CIFAR-10 JPEG archives (default: "
                   f"{TRAINING_SETTINGS['dataset']})")  # fmt: skip
    p.add_argument("--out", help="where the packed runs go ($OUT); required unless --take-back or --pack")
    p.add_argument("--commit", help="the commit the device's copy of the tree was made from; as --out")
    p.add_argument("--resume", help="a folder of packed runs (cut off at a deadline, or made by --pack): "
                   "finish every run packed there (or those of --run-ids)")  # fmt: skip
    p.add_argument("--take-back", help="here, after the window: unpack this folder's packed runs into --runs")
    p.add_argument("--pack", help="here, before a window: pack the chosen cut-off runs of --runs into this "
                   "folder, to carry for --resume (--float16: to commit, finished runs too)")  # fmt: skip
    p.add_argument("--float16", action="store_true", help="with --pack: weights in float16 (a cut-off run's "
                   "optimizer momentum restarted), a quarter of the size, to commit a run (training/kept)")
    p.add_argument("--runs", default="/tmp/relu_runs", help="where the run folders are trained")
    p.add_argument("--steps-per-execution", type=int, help="training steps per compiled call (default: "
                   f"{TRAINING_SETTINGS['steps_per_execution']})")  # fmt: skip
    p.add_argument("--deadline-s", type=float, help="everything is packed by then, from the start (default: "
                   f"{TRAINING_SETTINGS['deadline_s']:g})")  # fmt: skip
    p.add_argument("--train-subset", type=int, help="(for trying the script out) images per epoch")
    p.add_argument("--test-subset", type=int, help="(for trying the script out) test images per pass")
    p.add_argument("--augment-on", choices=["host", "device"],
                   help="(for trying the script out on a CPU, where the queued 'auto' is the host) force it")
    args = p.parse_args(argv)

    def given(*names: str) -> list[str]:
        return [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]

    modes, training = given("take_back", "pack"), given("out", "commit", "resume", *TRAINING_SETTINGS)
    if len(modes) > 1 or (modes and training):
        p.error(f"{' and '.join(modes + training)} do not go together: --take-back or --pack (here, with "
                "--runs) or a training command on the device (--out, --commit, --resume, the training "
                "settings)")  # fmt: skip
    if args.take_back and args.queue is not None:
        p.error("--queue does not go with --take-back, which unpacks the runs its folder holds, queued or no")
    args.queue = args.queue or str(QUEUE)
    for name, value in TRAINING_SETTINGS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    paths = ("take_back", "pack", "runs", "out", "resume")
    blank = [name for name in given(*paths) if files.names_nothing(getattr(args, name[2:].replace("-", "_")))]
    if blank:
        p.error(f"{', '.join(blank)} must name a folder; received an empty or blank path")
    if args.float16 and args.pack is None:
        p.error("--float16 goes with --pack (it says how a cut-off run's checkpoint is packed)")
    if args.count is not None and (named := given("run_ids", "resume", "take_back")):
        p.error(f"--count does not go with {' or '.join(named)}, which take the runs named or packed")
    if args.count is None:
        args.count = NEXT_RUNS
    if args.count < 1:
        p.error(f"--count must be >= 1; received {args.count}")
    if args.take_back:
        folder = Path(args.take_back)
        try:
            archives = [packed_path(folder, run_id) for run_id in args.run_ids or packed_run_ids(folder)]
        except ValueError as error:
            p.error(f"--take-back: {error}")
        take_back_all(archives, Path(args.runs), p)
        return 0
    if args.pack is not None:
        return pack_command(args, p)
    if not (args.out and args.commit):
        p.error("--out and --commit are required (or --take-back, or --pack)")
    if not args.deadline_s > PACKING_S:
        p.error(f"--deadline-s must be > {PACKING_S} (seconds from the start, the last {PACKING_S} of them "
                f"to pack the runs); received {args.deadline_s}")  # fmt: skip
    out, runs = Path(args.out), Path(args.runs)
    try:  # with --resume, the runs carried back, not the queue's next ones
        run_ids = args.run_ids or (packed_run_ids(Path(args.resume)) if args.resume else None)
        items = chosen_runs(Path(args.queue), run_ids, args.count)
        if not items:
            p.error(f"every run of {args.queue} is finished")
        names = [item.run_id for item in items]
        commands = {item.run_id: train_command(item, runs, args) for item in items}  # settings checked
        for split in ("train", "test"):
            data.find(args.dataset, split)
        files.check_writable(out, "--out folder")
        files.check_writable(runs, "folder of runs")
    except (ValueError, OSError) as error:  # before any folder is made
        p.error(str(error))

    start = time.monotonic()
    if args.resume:
        take_back_all([packed_path(Path(args.resume), name) for name in names], runs, p)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / len(items):.2f}",
           "RELU_RATIO_SOURCE_COMMIT": args.commit}  # fmt: skip
    decode(args.dataset)
    procs = {}
    for item in items:
        run = runs / item.run_id
        run.mkdir(parents=True, exist_ok=True)
        with open(run / LOG_FILE, "a") as log:  # the child keeps its own copy of the descriptor
            command = commands[item.run_id]
            print(" ".join(command[1:]), flush=True)
            procs[run] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = start + args.deadline_s - PACKING_S
    while any(proc.poll() is None for proc in procs.values()) and time.monotonic() < stop:
        time.sleep(2)
    cut_off = [run.name for run, proc in procs.items() if proc.poll() is None]
    for run, proc in procs.items():
        if proc.poll() is None:  # cut off at the deadline: packed with its last backup for --resume
            proc.terminate()
            proc.wait()
        packed = pack(run, out)
        tail = (run / LOG_FILE).read_text().splitlines()[-3:]
        print(f"{run.name}: exit {proc.returncode}, {packed.stat().st_size / 2**20:.1f} MiB packed", *tail,
              sep="\n  ")  # fmt: skip
    failed = [run.name for run, proc in procs.items() if run.name not in cut_off and proc.returncode]
    if failed:
        print(f"failed: {failed}")
        return 1
    if cut_off:
        print(f"cut off at the deadline, packed for --resume: {cut_off}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
