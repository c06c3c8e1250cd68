"""What the training CLI's input pipeline and callbacks cost against the bare training step.

Usage (prints a Markdown table; records nothing)::

    KERAS_BACKEND=torch python benchmarks/pipeline_cost.py --models resnet20_21 preact56_32 \
        [--mixed-precision mixed_bfloat16]

One model, one process, the same random uint8 images, and ``model.fit`` for one epoch fed four ways, each
on a freshly built and warmed-up model (what ``benchmarks/throughput.py`` trains: the recipe's step, the
backend's fast training layers of ``relu_ratio.train.kernels``):

1. ``arrays``: the images as one numpy array (Keras' own slicing: the bare step);
2. ``batches``: :class:`relu_ratio.data.Batches` without augmentation (the CLI's ``PyDataset``);
3. ``augmented``: the same with the CIFAR augmentation in numpy (pad, crop, flip: ``--augment-on host``);
4. ``cli``: that and the CLI's callbacks (``train.callbacks.make``: divergence guard, backups every 200
   steps, CSV, TensorBoard, best weights).

Images/s are whole-epoch wall clock (first steps included, after one warm-up call of ``fit``), so the rows
compare; ``cpu/wall`` is the process's CPU time per wall-clock second (2.0 keeps both cores busy).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).parent))
import throughput  # beside this file: the training setup the throughput benchmark times

from relu_ratio import data, flags, train
from relu_ratio.train import callbacks as callbacks_lib
from relu_ratio.train.devices import device

FEEDS = ("arrays", "batches", "augmented", "cli")


def measure(name: str, batch: int, steps: int) -> list[dict]:
    """One row per feed of :data:`FEEDS`: images/s and CPU time per wall-clock second."""
    rows = []
    for feed in FEEDS:
        model, images, labels = throughput.training_setup(name, batch, steps)
        split = data.Split(images, labels.argmax(-1).astype("int32"), throughput.RANDOM)
        model.fit(images[:batch], labels[:batch], batch_size=batch, epochs=1, verbose=0)  # warm-up
        kwargs = {}
        if feed == "arrays":
            feeding = (images, labels)
            kwargs = {"batch_size": batch, "shuffle": False}
        else:
            feeding = (data.batches(split, batch, augment=feed != "batches", one_hot=True),)
        with tempfile.TemporaryDirectory(prefix="pipeline_cost-") as folder:  # the callbacks' run folder
            if feed == "cli":
                config = train.TrainConfig(model=name, recipe="fast", epochs=1, out=folder).resolved()
                kwargs["callbacks"] = callbacks_lib.make(Path(folder), config, device())
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(*feeding, epochs=1, verbose=0, **kwargs)
            wall = time.perf_counter() - wall
        rows.append({"model": name, "feed": feed, "images_per_s": len(images) / wall,
                     "cpu_per_wall": (time.process_time() - cpu) / wall})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    p = flags.Parser(prog="python benchmarks/pipeline_cost.py", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20_21"])
    p.add_argument("--batch", type=throughput.count, default=128)
    p.add_argument("--steps", type=throughput.count, default=30, help="training steps per feed (one epoch)")
    p.add_argument("--mixed-precision", default="float32", choices=["float32", "mixed_bfloat16"],
                   help="the Keras dtype policy the models train in (the CLI's 'auto' on a bfloat16 CPU)")
    args = p.parse_args(argv)
    throughput.check_models(p, args.models)
    keras.mixed_precision.set_global_policy(args.mixed_precision)
    print(f"Keras on {keras.backend.backend()}, {device()}, {args.mixed_precision}, batch {args.batch}, "
          f"{args.steps} steps\n")  # fmt: skip
    print("| model | feed | images/s | of the bare step | cpu/wall |\n| --- | --- | --- | --- | --- |")
    for name in args.models:
        rows = measure(name, args.batch, args.steps)
        for row in rows:
            share = row["images_per_s"] / rows[0]["images_per_s"]
            print(
                f"| {name} | {row['feed']} | {row['images_per_s']:.1f} | {share:.2f} "
                f"| {row['cpu_per_wall']:.2f} |"
            )


if __name__ == "__main__":
    main()
