"""Train a pair of zoo networks side by side on one lent GPU, in one command (plus a --resume if cut off).

The ``device`` tool lends a GPU for minutes: one command of at most 10 minutes (training/README.md, "On a
lent GPU"). This script does the whole job inside one such command:

1. times each model's training step concurrently (compile, then steps on random images through the same
   augmenting ``Batches`` the CLI feeds), while the dataset is decoded once into the cache the runs share;
2. picks the largest epoch count that lets both runs finish before ``--deadline-s`` (the same for both, so
   the pair is compared at equal epochs); ``--epochs N`` skips both steps and trains exactly N epochs
   (e.g. queued runs, whose epochs are fixed: a run cut off at the deadline is finished by ``--resume``);
3. runs ``python -m relu_ratio.train`` for both at once (``--recipe fast``, ``mixed_bfloat16``, each with
   its seed: ``--seed`` gives one for all or one per model), recording
   ``--commit`` as the runs' source commit (the device's copy of the tree may carry a stale ``.git``);
4. packs each run folder into ``OUT/<run>.tar.gz``: a finished run without its backups, a run cut off at the
   deadline with its last committed backup. ``--resume DIR`` (the packed runs, carried back) unpacks them
   and finishes them with their own epoch count, without probing.

Exit status: 0 when every run finished, 3 when a run was cut off at the deadline (packed for ``--resume``),
1 when a run failed. On this machine, ``tar xzf <run>.tar.gz -C ~/relu_runs/gpu`` unpacks a finished run
where ``python -m relu_ratio.zoo register ~/relu_runs/gpu/<run> --data ../shared/data`` takes it.

Example (on the device machine, after ``../shared/tools/gpu-prep``'s install prefix)::

    python3 training/gpu_pair.py --out $OUT --dataset .data --deadline-s 550 --commit <sha>
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from relu_ratio.train.recipes import RECIPES

BATCH_SIZE = RECIPES["fast"]["batch_size"]
RUN_KEEP = ("config.json", "result.json", "metrics.csv", "progress.json", "model.weights.h5", "train.log")


def probe(name: str, steps: int, batch_size: int) -> dict:
    """Seconds to compile and to run one training step (and one evaluation pass of 10,000 images) of
    ``name`` in ``mixed_bfloat16`` with the ``fast`` recipe, on random uint8 images."""
    import keras
    import numpy as np

    from relu_ratio import data

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import throughput  # the benchmarks' training setup: the model compiled with the recipe, random images

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model, images, labels = throughput.training_setup(name, batch_size, steps, fused=False)
    info = data.DatasetInfo(name="random", class_names=tuple(str(i) for i in range(10)),
                            mean=(128.0,) * 3, std=(64.0,) * 3)  # fmt: skip
    split = data.Split(images, labels.argmax(axis=1), info)
    times = []

    class Clock(keras.callbacks.Callback):  # the CLI's divergence guard reads the loss every step too
        def on_train_batch_end(self, batch, logs=None):
            float(np.asarray(logs["loss"]))
            times.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(data.batches(split, batch_size, augment=True, one_hot=True), epochs=1, verbose=0,
              callbacks=[Clock()])  # fmt: skip
    warm = steps // 4
    evaluation = data.batches(
        data.Split(split.images[:10_000], split.labels[:10_000], info), 256, one_hot=True
    )
    passes = []
    for _ in range(2):  # the first pass compiles
        eval_start = time.perf_counter()
        model.evaluate(evaluation, verbose=0)
        passes.append(time.perf_counter() - eval_start)
    return {
        "model": name,
        "compile_s": round(times[0] - start, 2),
        "step_s": (times[-1] - times[warm]) / (len(times) - 1 - warm),
        "eval_compile_s": round(passes[0] - passes[1], 2),
        "eval_s": round(passes[1] * 10_000 / len(evaluation.split), 3),
    }


def plan_epochs(probes: list[dict], steps_per_epoch: int, seconds_left: float, max_epochs: int) -> int:
    """The most epochs (the same for every model) that finish in ``seconds_left``: a 15 % margin on each
    epoch (the epoch-end backup and checkpoint), twice the probe's compile times (on the H100 the runs'
    first epoch took 157 s against 20 to 27 s for the others, where the probe had compiled in 72 s), and
    40 s for building, saving, the last evaluation and packing."""
    slowest = max(p["step_s"] * steps_per_epoch + p["eval_s"] for p in probes)
    fixed = 2 * max(p["compile_s"] + p["eval_compile_s"] for p in probes) + 40
    return max(0, min(max_epochs, math.floor((seconds_left - fixed) / (1.15 * slowest))))


def pack(run: Path, out: Path) -> Path:
    """``out/<run>.tar.gz``: a finished run's record and weights; for a cut-off run also its backup record
    and the checkpoint that record names (never a newer file a kill may have left half-written)."""
    names = [run / n for n in RUN_KEEP if (run / n).is_file()]
    record_path = run / "backup" / "training_metadata.json"
    if not (run / "result.json").is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        names += [record_path, run / "backup" / record["weights"]]
    target = out / f"{run.name}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for path in names:
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(run.parent)))
    return target


def unpack(packed: Path, runs: Path, names: list[str]) -> int:
    """Unpack ``packed/<name>.tar.gz`` into ``runs`` for every run name; returns their (common) epochs."""
    epochs = set()
    for name in names:
        with tarfile.open(packed / f"{name}.tar.gz") as tar:
            tar.extractall(runs, filter="data")
        epochs.add(json.loads((runs / name / "config.json").read_text())["epochs"])
    if len(epochs) != 1:
        raise SystemExit(f"the packed runs were planned for different epochs {sorted(epochs)}")
    return epochs.pop()


def seeds(models: list[str], given: list[int]) -> list[int]:
    """The seed of each model: ``given`` holds one for all or one per model."""
    return given * len(models) if len(given) == 1 else given


def run_names(models: list[str], given: list[int]) -> list[str]:
    """The run folders' names, e.g. ``resnet20_21-gpu-seed2``."""
    return [f"{name}-gpu-seed{seed}" for name, seed in zip(models, seeds(models, given))]


def train_command(name: str, seed: int, run: Path, epochs: int, args: argparse.Namespace) -> list[str]:
    """The training CLI's command for one run of the pair (the same flags when it resumes)."""
    command = [sys.executable, "-m", "relu_ratio.train", "--model", name, "--dataset", args.dataset,
               "--out", str(run), "--recipe", "fast", "--epochs", str(epochs), "--seed", str(seed),
               "--mixed-precision", "mixed_bfloat16", "--verbose", "2",
               "--backup-every", "1000000"]  # backups at epoch ends only  # fmt: skip
    for flag, value in (("--train-subset", args.train_subset), ("--test-subset", args.test_subset)):
        command += [flag, str(value)] if value else []
    return command


def decode(dataset: str) -> int:
    """Decode both splits once into the cache the runs share; returns the training images."""
    from relu_ratio import data

    data.load(dataset, "test")
    return len(data.load(dataset, "train"))


def plan(args: argparse.Namespace, env: dict, start: float, out: Path) -> int:
    """Probe both models at once while the data is decoded; write and return the epoch plan."""
    probes = [
        subprocess.Popen([sys.executable, __file__, "--out", args.out, "--commit", args.commit,
                          "--probe", name, "--probe-steps", str(args.probe_steps)],
                         env=env, stdout=subprocess.PIPE, text=True)
        for name in args.models
    ]  # fmt: skip
    train_images = args.train_subset or decode(args.dataset)  # while the probes compile
    outputs = [proc.communicate()[0] for proc in probes]
    failed = [name for name, proc in zip(args.models, probes) if proc.returncode]
    if failed:
        raise SystemExit(f"the probe of {failed} failed (its error is above)")
    timings = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    steps_per_epoch = -(-train_images // BATCH_SIZE)
    epochs = plan_epochs(
        timings, steps_per_epoch, args.deadline_s - (time.monotonic() - start), args.max_epochs
    )
    record = {"probes": timings, "steps_per_epoch": steps_per_epoch, "epochs": epochs,
              "deadline_s": args.deadline_s,
              "planned_after_s": round(time.monotonic() - start, 1)}  # fmt: skip
    print(json.dumps(record), flush=True)
    (out / "plan.json").write_text(json.dumps(record, indent=2))
    if epochs < 1:
        raise SystemExit("not even one epoch fits before the deadline")
    return epochs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["preact164_32", "preact164_11"])
    p.add_argument("--dataset", default=".data", help="the folder holding the CIFAR-10 JPEG archives")
    p.add_argument("--out", required=True, help="where the packed runs and the plan go ($OUT)")
    p.add_argument("--commit", required=True, help="the commit the device's copy of the tree was made from")
    p.add_argument("--resume", help="a folder of packed runs cut off at a deadline: finish them")
    p.add_argument("--runs", default="/tmp/relu_runs", help="where the run folders are trained")
    p.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        help="one seed for every model, or one per model (in the order of --models)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="train exactly this many epochs (no probes; a run cut off at the deadline is packed "
        "for --resume) instead of the most that fit",
    )
    p.add_argument("--deadline-s", type=float, default=550, help="everything is packed by then (from start)")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--probe-steps", type=int, default=80, help="timed training steps per probe, >= 4")
    p.add_argument("--train-subset", type=int, help="(for trying the script out) images per epoch")
    p.add_argument("--test-subset", type=int, help="(for trying the script out) test images per pass")
    p.add_argument("--probe", help=argparse.SUPPRESS)  # internal: time one model, print JSON
    args = p.parse_args(argv)
    if args.probe_steps < 4:
        p.error(f"--probe-steps must be >= 4 (a quarter of them warm up); received {args.probe_steps}")
    if len(args.seed) not in (1, len(args.models)):
        p.error(f"--seed takes one seed or one per model ({len(args.models)}); received {args.seed}")
    if args.epochs is not None and args.epochs < 1:
        p.error(f"--epochs must be >= 1; received {args.epochs}")
    if args.epochs is not None and args.resume:
        p.error("--resume finishes the packed runs with their own epochs: leave out --epochs")
    names = run_names(args.models, args.seed)
    if len(set(names)) < len(names):
        p.error(f"--models and --seed name a run twice: {names}")
    if args.probe:
        print(json.dumps(probe(args.probe, args.probe_steps, BATCH_SIZE)))
        return 0

    start = time.monotonic()
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / len(args.models):.2f}",
           "RELU_RATIO_SOURCE_COMMIT": args.commit}  # fmt: skip
    if args.resume:
        epochs = unpack(Path(args.resume), runs, names)
    elif args.epochs is not None:
        epochs = args.epochs
        decode(args.dataset)
    else:
        epochs = plan(args, env, start, out)

    procs = {}
    for name, seed, run_name in zip(args.models, seeds(args.models, args.seed), names):
        run = runs / run_name
        run.mkdir(parents=True, exist_ok=True)
        with open(run / "train.log", "a") as log:  # the child keeps its own copy of the descriptor
            command = train_command(name, seed, run, epochs, args)
            procs[run] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = start + args.deadline_s - 10
    while any(proc.poll() is None for proc in procs.values()) and time.monotonic() < stop:
        time.sleep(2)
    cut_off = [run.name for run, proc in procs.items() if proc.poll() is None]
    for run, proc in procs.items():
        if proc.poll() is None:  # cut off at the deadline: packed with its last backup for --resume
            proc.terminate()
            proc.wait()
        packed = pack(run, out)
        tail = (run / "train.log").read_text().splitlines()[-3:]
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
