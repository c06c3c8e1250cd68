"""Train a pair of zoo networks side by side on one lent GPU, in one command, with as many epochs as fit.

The ``device`` tool lends a GPU for minutes: one command of at most 10 minutes (training/README.md, "On a
lent GPU"). This script does the whole job inside one such command:

1. times each model's training step concurrently (compile, then steps on random images through the same
   augmenting ``Batches`` the CLI feeds), while the dataset is decoded once into the cache the runs share;
2. picks the largest epoch count that lets both runs finish before ``--deadline-s`` (the same for both, so
   the pair is compared at equal epochs);
3. runs ``python -m relu_ratio.train`` for both at once (``--recipe fast``, ``mixed_bfloat16``);
4. packs each run folder into ``OUT/<run>.tar.gz`` (a finished run without its backups; a run cut off at
   the deadline with its last backup, so that the CLI can resume it).

On this machine, ``tar xzf <run>.tar.gz -C ~/relu_runs/zoo`` unpacks a run where ``python -m relu_ratio.zoo
register`` takes it.

Example (on the device machine, after ``../shared/tools/gpu-prep``'s install prefix)::

    python3 training/gpu_pair.py --out $OUT --dataset .data --deadline-s 560
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

RUN_KEEP = ("config.json", "result.json", "metrics.csv", "progress.json", "model.weights.h5", "train.log")


def probe(name: str, steps: int, batch_size: int) -> dict:
    """Seconds to compile and to run one training step (and one evaluation pass of 10,000 images) of
    ``name`` in ``mixed_bfloat16`` with the ``fast`` recipe, on random uint8 images."""
    import keras
    import numpy as np

    from relu_ratio import data, models, train

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    info = data.DatasetInfo(name="random", class_names=tuple(str(i) for i in range(10)),
                            mean=(128.0,) * 3, std=(64.0,) * 3)  # fmt: skip
    split = data.Split(
        rng.integers(0, 256, (batch_size * steps, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, batch_size * steps).astype(np.int64),
        info,
    )
    model = models.build(name, normalization=[list(info.mean), list(info.std)])
    train.compile_for(model, train.TrainConfig(model=name, recipe="fast", epochs=1).resolved(), steps)
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
    first epoch took 157 s against 22 s for the next, where the probe had compiled in 72 s), and 40 s for
    building, saving, the last evaluation and packing."""
    slowest = max(p["step_s"] * steps_per_epoch + p["eval_s"] for p in probes)
    fixed = 2 * max(p["compile_s"] + p["eval_compile_s"] for p in probes) + 40
    return max(0, min(max_epochs, math.floor((seconds_left - fixed) / (1.15 * slowest))))


def pack(run: Path, out: Path) -> Path:
    """``out/<run>.tar.gz``: a finished run's record and weights, or a cut-off run's last backup too."""
    names = [run / n for n in RUN_KEEP if (run / n).is_file()]
    if not (run / "result.json").is_file() and (run / "backup").is_dir():
        checkpoints = sorted((run / "backup").glob("ckpt-*.weights.h5"))
        names += [run / "backup" / "training_metadata.json", *checkpoints[-1:]]
    target = out / f"{run.name}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for path in names:
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(run.parent)))
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["preact164_32", "preact164_11"])
    p.add_argument("--dataset", default=".data", help="the folder holding the CIFAR-10 JPEG archives")
    p.add_argument("--out", required=True, help="where the packed runs and the plan go ($OUT)")
    p.add_argument("--runs", default="/tmp/relu_runs", help="where the run folders are trained")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deadline-s", type=float, default=560, help="everything is packed by then (from start)")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--probe-steps", type=int, default=80)
    p.add_argument("--train-subset", type=int, help="(for trying the script out) images per epoch")
    p.add_argument("--test-subset", type=int, help="(for trying the script out) test images per pass")
    p.add_argument("--probe", help=argparse.SUPPRESS)  # internal: time one model, print JSON
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe, args.probe_steps, 128)))
        return 0

    start = time.monotonic()
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / len(args.models):.2f}"}
    probes = [
        subprocess.Popen([sys.executable, __file__, "--out", args.out, "--probe", name,
                          "--probe-steps", str(args.probe_steps)], env=env, stdout=subprocess.PIPE, text=True)
        for name in args.models
    ]  # fmt: skip
    from relu_ratio import data  # decode once into the cache while the probes compile

    train_images = args.train_subset or len(data.load(args.dataset, "train"))
    data.load(args.dataset, "test")
    timings = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in probes]
    if any(proc.returncode for proc in probes):
        raise SystemExit(f"a probe failed: {[proc.returncode for proc in probes]}")
    steps_per_epoch = -(-train_images // 128)
    epochs = plan_epochs(
        timings, steps_per_epoch, args.deadline_s - (time.monotonic() - start), args.max_epochs
    )
    plan = {"probes": timings, "steps_per_epoch": steps_per_epoch, "epochs": epochs,
            "planned_after_s": round(time.monotonic() - start, 1)}  # fmt: skip
    print(json.dumps(plan), flush=True)
    (out / "plan.json").write_text(json.dumps(plan, indent=2))
    if epochs < 1:
        raise SystemExit("not even one epoch fits before the deadline")

    folders, procs = [], []
    for name in args.models:
        run = runs / f"{name}-gpu-seed{args.seed}"
        run.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "relu_ratio.train", "--model", name, "--dataset", args.dataset,
                   "--out", str(run), "--recipe", "fast", "--epochs", str(epochs), "--seed", str(args.seed),
                   "--mixed-precision", "mixed_bfloat16", "--verbose", "2",
                   "--backup-every", "1000000"]  # backups at epoch ends only  # fmt: skip
        for flag, value in (("--train-subset", args.train_subset), ("--test-subset", args.test_subset)):
            command += [flag, str(value)] if value else []
        log = open(run / "train.log", "a")  # noqa: SIM115 (closed when the run ends)
        folders.append((run, log))
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    while any(proc.poll() is None for proc in procs) and time.monotonic() - start < args.deadline_s - 10:
        time.sleep(2)
    for proc in procs:
        if proc.poll() is None:  # cut off at the deadline: the last backup is packed for resuming
            proc.terminate()
            proc.wait()
    for (run, log), proc in zip(folders, procs):
        log.close()
        packed = pack(run, out)
        tail = (run / "train.log").read_text().splitlines()[-4:]
        print(f"{run.name}: exit {proc.returncode}, {packed.stat().st_size / 2**20:.1f} MiB packed", *tail,
              sep="\n  ")  # fmt: skip
    return max(proc.returncode for proc in procs)


if __name__ == "__main__":
    sys.exit(main())
