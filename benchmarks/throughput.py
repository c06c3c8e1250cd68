"""Training and inference throughput (images/s) of relu_ratio models on the current backend and device.

Usage (figures are appended to ``benchmarks/results.jsonl`` with device and versions)::

    KERAS_BACKEND=tensorflow python benchmarks/throughput.py --models resnet20_21 preact164_32 \
        --mixed-precision float32 mixed_bfloat16 --torch
    KERAS_BACKEND=jax python benchmarks/throughput.py --mixed-precision mixed_bfloat16 --torch   # on a GPU

``--augment-on device`` measures the path a lent GPU trains with (:mod:`relu_ratio.train.pipeline`): uint8
batches in, the CIFAR augmentation inside the compiled step, ``--steps-per-execution`` steps per call, and
reports beside images/s the achieved training TFLOP/s (3 x 2 x multiply-adds per image: forward and
backward) and the host's share: the share of the timed wall clock the Python main thread spent on the CPU
(slicing batches, dispatching steps, callbacks). Near 100 % the step waits on the host; low, on the device::

    KERAS_BACKEND=jax python benchmarks/throughput.py --models preact164_32 --batch 512 \
        --augment-on device --steps-per-execution 16 --steps 64 --warmup 16 --mixed-precision mixed_bfloat16

``--torch`` also measures the PyTorch reference (``benchmarks/torch_reference.py``: the same network, for
the pre-activation ``resnet`` and ``preact`` families, channels-last, bfloat16 autocast where Keras runs
``mixed_bfloat16``) in the same run, so the two can be compared on one machine.

Training runs what the training CLI runs: the recipe's compiled ``train_step`` through ``model.fit``, with
the backend's fast training layers of ``relu_ratio.train.kernels`` (the fused BatchNorm under TensorFlow and
PyTorch, the copy-free convolution under PyTorch; ``--stock-layers``: Keras' own; a row says which), on
random uint8 images (no data loading in the measurement); inference times ``predict_on_batch``. Warm-up
steps (compilation) are excluded. Not a test: it only prints and records what it measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np

from relu_ratio import data, describe, files, flags, models, train
from relu_ratio.patterns import ReLUPattern
from relu_ratio.train import fused_norm, speeds, torch_conv
from relu_ratio.train.devices import CPU_CLASSES, cpu_class
from relu_ratio.train.kernels import with_fast_kernels
from relu_ratio.train.pipeline import training_input

RESULTS = Path(__file__).with_name("results.jsonl")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` for numbers of steps, images or calls: an integer >= ``minimum`` (else argparse's
    one-line error, naming the flag)."""

    def count(text: str) -> int:
        value = int(text)  # a ValueError: argparse says "invalid count value"
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}; received {value}")
        return value

    return count


count = at_least(1)


def check_models(p: argparse.ArgumentParser, names: list[str], zoo_only: bool = False) -> None:
    """Stop with one line (exit 2) before anything is measured or recorded if a name in ``names`` is neither
    a zoo entry whose weights the store holds nor (unless ``zoo_only``) a builder name: a misspelt second
    model must not leave the first one's rows recorded alone."""
    from relu_ratio import zoo

    for name in names:
        try:
            if zoo_only or name in zoo.list():
                zoo.registry.verified_weights(zoo.info(name))
            else:
                models.check_name(name)
        except ValueError as error:
            p.error(f"--models {name!r}: {error}")
PAGE = Path(__file__).parents[1] / "docs" / "BENCHMARKS.md"
SPEEDS_START, SPEEDS_END = "<!-- speeds:start -->", "<!-- speeds:end -->"
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
TORCH_FAMILIES = ("resnet", "preact")  # the pre-activation nets benchmarks/torch_reference.py builds
# What the random images stand in for: ten classes, and the mean and std the benchmarked models normalise with
RANDOM = data.DatasetInfo("random", tuple(map(str, range(10))), (128.0,) * 3, (64.0,) * 3)
HEADER = "| model | batch | precision | backend | train img/s | vs TensorFlow | runs | date | note |"


class _StepTimer(keras.callbacks.Callback):
    """Times the steps after the first ``warmup`` (Keras calls back every ``steps_per_execution`` steps): wall
    clock, and the CPU time of the thread that runs ``fit`` (the host's part of the step)."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_begin(self, logs=None):
        if self.warmup == 0:  # every step timed, the first one's tracing too
            self.start, self.first, self.thread = time.perf_counter(), 0, time.thread_time()

    def on_train_batch_end(self, batch, logs=None):
        if logs:  # the step's values reach the host: the steps called so far have run
            float(logs.get("loss", 0.0))
        if self.start is None and batch + 1 >= self.warmup:
            self.start, self.first, self.thread = time.perf_counter(), batch + 1, time.thread_time()
        elif self.start is not None:
            self.steps = batch + 1 - self.first

    def seconds_per_step(self) -> float:
        return (time.perf_counter() - self.start) / self.steps

    def host_share(self) -> float:
        return (time.thread_time() - self.thread) / (time.perf_counter() - self.start)


def training_setup(
    name: str, batch: int, steps: int, fast_kernels: bool = True
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """What the training CLI trains, on random data: the model ``name`` (on the backend's fast training
    layers if ``fast_kernels``), compiled with the ``fast`` recipe, and ``steps`` batches of random uint8
    images and labels."""
    rng = np.random.default_rng(0)
    model = models.build(name, normalization=(RANDOM.mean, RANDOM.std))
    model = with_fast_kernels(model) if fast_kernels else model
    images = rng.integers(0, 256, size=(batch * steps, 32, 32, 3), dtype=np.uint8)
    labels = np.eye(10, dtype="float32")[rng.integers(0, 10, len(images))]
    train.compile_for(model, train.TrainConfig(recipe="fast", epochs=1).resolved(), steps)
    return model, images, labels


def measure(name: str, batch: int, steps: int, warmup: int, fast_kernels: bool = True) -> dict:
    model, images, labels = training_setup(name, batch, steps + warmup, fast_kernels)
    timer = _StepTimer(warmup)
    model.fit(images, labels, batch_size=batch, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    train_ips = batch / timer.seconds_per_step()

    x = images[:batch]
    for _ in range(warmup):
        np.asarray(model.predict_on_batch(x))
    start = time.perf_counter()
    for _ in range(steps):
        np.asarray(model.predict_on_batch(x))
    infer_ips = batch * steps / (time.perf_counter() - start)
    return {"framework": "keras", "model": name, "batch": batch, "train_images_per_s": round(train_ips, 1),
            "inference_images_per_s": round(infer_ips, 1), "steps": steps, "warmup": warmup,
            **layers_of(model)}  # fmt: skip


def layers_of(model: keras.Model) -> dict:
    """What a row says of the layers it trained: ``batch_norm`` fused or stock, and under PyTorch ``conv``
    copy-free (:mod:`relu_ratio.train.torch_conv`) or stock."""
    kinds = {type(layer) for layer in model._flatten_layers()}
    row = {"batch_norm": "fused" if fused_norm.BatchNormalization in kinds else "stock"}
    if keras.backend.backend() == "torch":
        row["conv"] = "copy-free" if torch_conv.Conv2D in kinds else "stock"
    return row


def measure_device_path(
    name: str, batch: int, steps: int, warmup: int, steps_per_execution: int, fast_kernels: bool = True
) -> dict:
    """Training throughput of ``name`` the way a lent GPU trains it (``augment_on="device"``, on the
    backend's fast layers if ``fast_kernels``, as the CLI trains): images/s, training TFLOP/s and the
    host's share of the timed wall clock (see the module's docstring)."""
    rng = np.random.default_rng(0)
    stock = models.build(name, normalization=(RANDOM.mean, RANDOM.std))
    model = with_fast_kernels(stock) if fast_kernels else stock
    count = batch * (steps + warmup)
    split = data.Split(rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
                       rng.integers(0, 10, count).astype("int32"), RANDOM)  # fmt: skip
    trainable, batches = training_input(model, split, batch, seed=0, augment_on="device")
    config = train.TrainConfig(recipe="fast", epochs=1, batch_size=batch,
                               steps_per_execution=steps_per_execution).resolved()  # fmt: skip
    train.compile_for(trainable, config, len(batches))
    timer = _StepTimer(warmup)
    trainable.fit(batches, epochs=1, callbacks=[timer], verbose=0)
    images_per_s = batch / timer.seconds_per_step()
    flops_per_image = 3 * 2 * describe(stock).flops
    return {"framework": "keras", "model": name, "batch": batch, "augment_on": "device",
            "steps_per_execution": steps_per_execution, "train_images_per_s": round(images_per_s, 1),
            "train_tflops": round(images_per_s * flops_per_image / 1e12, 3),
            "host_share": round(timer.host_share(), 3), "steps": timer.steps, "warmup": warmup,
            **layers_of(model)}  # fmt: skip


def run_context(precision: str, note: str | None = None) -> dict:
    """What every record in results.jsonl carries besides its figures: backend and its version, device,
    CPU model and class (:func:`relu_ratio.train.devices.cpu_class`), versions, date, and ``note`` if given
    (the conditions, e.g. another job sharing the cores)."""
    backend = keras.backend.backend()
    return {
        "backend": backend,
        "backend_version": importlib.import_module(backend).__version__ if backend != "numpy" else None,
        "device": train.device(),
        "cpu": cpu_model(),
        "cpu_class": cpu_class(),
        "precision": precision,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
        **({"note": note} if note else {}),
    }


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; else what ``platform`` knows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    return names[0] if names else platform.machine()


def record(row: dict) -> None:
    """Append one result row to results.jsonl."""
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")


def update_tables(check: bool = False, results: Path = RESULTS, page: Path = PAGE,
                  table: Path = speeds.SPEEDS_FILE) -> bool:  # fmt: skip
    """Write, from the rows of ``results``, the package's measured speeds ``table``
    (:mod:`relu_ratio.train.speeds`: the entries whose CPU class was recorded) and the tables per CPU class
    between the speeds markers of ``page``. Returns whether both were current; ``check`` writes nothing."""
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = speeds.fastest_runs(rows)
    text = "[\n" + ",\n".join(json.dumps(e) for e in entries if e["cpu_class"]) + "\n]\n"
    table_current = table.is_file() and table.read_text(encoding="utf-8") == text
    if not table_current and not check:
        files.write_atomic(table, text)
    return files.replace_between(page, SPEEDS_START, SPEEDS_END, markdown(entries), check) and table_current


def markdown(entries: list[dict]) -> str:
    """A table per CPU class (the class not recorded last) of :func:`relu_ratio.train.speeds.fastest_runs`'
    entries, each figure also as a multiple of TensorFlow's for the same model, batch and precision.

    >>> entry = {"cpu_class": None, "model": "m", "batch": 8, "precision": "float32", "backend": "jax",
    ...          "train_images_per_s": 5.0, "runs": 1, "date": "2026-12-02"}
    >>> print(markdown([entry]).splitlines()[-1])
    | m | 8 | float32 | JAX | 5.0 | — | 1 | 2026-12-02 |  |
    """
    tf = {(e["cpu_class"], e["model"], e["batch"], e["precision"]): e["train_images_per_s"]
          for e in entries if e["backend"] == "tensorflow"}  # fmt: skip
    parts = []
    for cls in (*CPU_CLASSES, None):
        mine = [e for e in entries if e["cpu_class"] == cls]
        if not mine:
            continue
        parts += [f"#### {cls or 'Class not recorded'}", "", HEADER, "|" + " --- |" * HEADER.count(" |")]
        for e in mine:
            base = tf.get((cls, e["model"], e["batch"], e["precision"]))
            times = f"{e['train_images_per_s'] / base:.2f}x" if base else "—"
            backend = BACKEND_NAMES[e["backend"]]
            parts.append(f"| {e['model']} | {e['batch']} | {e['precision']} | {backend} | "
                         f"{e['train_images_per_s']} | {times} | {e['runs']} | {e['date']} | "
                         f"{e.get('note', '')} |")  # fmt: skip
        parts.append("")
    return "\n".join(parts).rstrip("\n")


def main(argv: list[str] | None = None) -> None:
    p = flags.Parser(prog="python benchmarks/throughput.py", description=__doc__.split("\n")[0],
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    p.add_argument("--models", nargs="+", default=["resnet20_21", "preact164_32"],
                   help="zoo entries or builder names")  # fmt: skip
    p.add_argument("--batch", type=count, default=128, help="images per step")
    p.add_argument("--steps", type=count, default=20, help="timed steps")
    p.add_argument("--warmup", type=at_least(0), default=5,
                   help="untimed steps first (tracing, oneDNN set-up)")
    p.add_argument("--mixed-precision", nargs="+", default=["float32"],
                   choices=["float32", "mixed_bfloat16", "mixed_float16"], help="one or more Keras policies")
    p.add_argument("--stock-layers", action="store_true",
                   help="train Keras' own BatchNormalization and Conv2D (not relu_ratio.train.kernels')")
    p.add_argument("--torch", action="store_true", help="also measure PyTorch (pre-activation nets)")
    p.add_argument("--torch-compile", action="store_true", help="with --torch: use torch.compile")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to results.jsonl")
    p.add_argument("--note", help="recorded with every row: the conditions, e.g. 'a training job shared the "
                   "cores: approximate'")  # fmt: skip
    p.add_argument("--augment-on", choices=["host", "device"], default="host",
                   help="device: the lent GPU's path (uint8 batches, augmentation in the step): training "
                   "images/s, TFLOP/s and the host's share")  # fmt: skip
    p.add_argument("--steps-per-execution", type=count, default=1, help="with --augment-on device")
    p.add_argument("--update-tables", action="store_true", help="measure nothing: write the package's speeds "
                   "per CPU class (relu_ratio/train/speeds.json) and docs/BENCHMARKS.md's tables from "
                   "results.jsonl")  # fmt: skip
    args = p.parse_args(argv)
    _refuse_ignored_flags(p, args)
    if args.update_tables:
        print("already current" if update_tables() else f"wrote {speeds.SPEEDS_FILE} and {PAGE}")
        return None
    check_models(p, args.models)
    without = [name for name in args.models if models.parse_name(name)[0] not in TORCH_FAMILIES]
    without += [precision for precision in args.mixed_precision if precision == "mixed_float16"]
    if args.torch and without:
        missing = ", ".join(without)
        p.error(f"--torch measures the PyTorch reference of {' and '.join(TORCH_FAMILIES)} networks in "
                f"float32 or mixed_bfloat16; it has none of {missing}")  # fmt: skip
    if args.augment_on == "device":
        return _device_path(args)
    print(f"{'framework:model':<22}{'precision':>16}{'batch':>6}{'train img/s':>14}{'infer img/s':>14}")
    for precision, name, context in _settings(args):
        row = {**measure(name, args.batch, args.steps, args.warmup, not args.stock_layers), **context}
        rows = [row]
        if args.torch:
            layers = ("batch_norm", "conv", "backend_version")
            keras_only = {k: v for k, v in row.items() if k not in layers}
            rows.append({**keras_only, **torch_row(name, args, precision), "framework": "torch"})
        for r in rows:
            label = f"{r['framework']}:{name}"
            print(f"{label:<22}{precision:>16}{args.batch:>6}{r['train_images_per_s']:>14}"
                  f"{r['inference_images_per_s']:>14}")  # fmt: skip
            if not args.no_record:
                record(r)
    print(f"backend {keras.backend.backend()}, {train.device()}")


def _refuse_ignored_flags(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop (one line, exit 2) on a flag the other flags would ignore, before anything is measured."""
    given = sorted(f"--{name.replace('_', '-')}" for name, value in vars(args).items()
                   if value != p.get_default(name) and name != "update_tables")  # fmt: skip
    if args.update_tables and given:
        p.error(f"--update-tables measures nothing: drop {', '.join(given)}")
    device = args.augment_on == "device"
    needs = (("torch_compile", args.torch, "--torch-compile needs --torch"),
             ("steps_per_execution", device, "--steps-per-execution needs --augment-on device"),
             ("note", not args.no_record, "--note is recorded with the rows: drop it with --no-record"),
             ("torch", not device, "--torch measures PyTorch on the host path only: drop it with "
              "--augment-on device"))  # fmt: skip
    for name, allowed, message in needs:
        if getattr(args, name) != p.get_default(name) and not allowed:
            p.error(message)


def _device_path(args: argparse.Namespace) -> None:
    print(f"{'model':<16}{'precision':>16}{'batch':>6}{'steps/call':>11}{'train img/s':>13}{'TFLOP/s':>9}"
          f"{'host share':>12}")  # fmt: skip
    for precision, name, context in _settings(args):
        measured = measure_device_path(name, args.batch, args.steps, args.warmup, args.steps_per_execution,
                                       not args.stock_layers)  # fmt: skip
        row = {**measured, **context}
        print(f"{name:<16}{precision:>16}{args.batch:>6}{args.steps_per_execution:>11}"
              f"{row['train_images_per_s']:>13}{row['train_tflops']:>9}{row['host_share']:>12.0%}")
        if not args.no_record:
            record(row)
    print(f"backend {keras.backend.backend()}, {train.device()}")


def _settings(args: argparse.Namespace) -> Iterator[tuple[str, str, dict]]:
    """(precision, model name, the record's context) for each precision and model asked for, the precision's
    policy set while its models are measured."""
    for precision in args.mixed_precision:
        keras.mixed_precision.set_global_policy(precision)
        context = run_context(precision, args.note)
        for name in args.models:
            yield precision, name, context


def torch_row(name: str, args, precision: str) -> dict:
    """The PyTorch reference of ``name``, measured like the Keras model (bfloat16 autocast for
    ``mixed_bfloat16``) in a subprocess; refuses a result whose parameter count differs from Keras'."""
    family, depth, pattern = models.parse_name(name)
    spec = models.FAMILIES[family]
    resolved = ReLUPattern(pattern).resolve(spec.kind, spec.blocks_per_stage(depth))
    masks = {mask for stage in resolved for mask in stage}
    if len(masks) != 1:
        raise ValueError(f"the PyTorch reference takes one ReLU mask for all blocks; {name} has {len(masks)}")
    (mask,) = masks
    command = [
        sys.executable, str(Path(__file__).with_name("torch_reference.py")), "--family", family,
        "--depth", str(depth), "--mask", "".join("1" if keep else "0" for keep in mask),
        "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--precision", "bfloat16" if precision == "mixed_bfloat16" else "float32",
        *(["--compile"] if args.torch_compile else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the PyTorch reference failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    row = {**json.loads(done.stdout.strip().splitlines()[-1]), "device": f"cpu: {os.cpu_count()} cores"}
    if row.pop("torch_device") != "cpu":
        row["device"] = "gpu (PyTorch)"
    keras_params = describe(models.build(name)).params
    if row["params"] != keras_params:
        raise RuntimeError(f"PyTorch reference has {row['params']} parameters, Keras {keras_params}.")
    return row


if __name__ == "__main__":
    main()
