"""Training and inference throughput (images/s) of relu_ratio models on the current backend and device.

Usage (figures are appended to ``benchmarks/results.jsonl`` with device and versions)::

    KERAS_BACKEND=tensorflow python benchmarks/throughput.py --models resnet20_21 preact164_32 --batch 128
    KERAS_BACKEND=jax python benchmarks/throughput.py --mixed-precision mixed_bfloat16 --torch   # on a GPU

``--torch`` also measures the PyTorch reference (``benchmarks/torch_reference.py``, the same network, for the
``preact`` models) in the same run, so the two can be compared on one machine.

Training runs the recipe's compiled ``train_step`` through ``model.fit`` on random uint8 images (no data
loading in the measurement); inference times ``predict_on_batch``. Warm-up steps (compilation) are
excluded. Not a test: it only prints and records what it measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import keras
import numpy as np

from relu_ratio import describe, models, patterns, train
from relu_ratio.patterns import ReLUPattern

RESULTS = Path(__file__).with_name("results.jsonl")
sys.path.insert(0, str(Path(__file__).parent))


class _StepTimer(keras.callbacks.Callback):
    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.warmup:
            self.start = time.perf_counter()
        elif batch + 1 > self.warmup:
            self.steps += 1

    def seconds_per_step(self) -> float:
        return (time.perf_counter() - self.start) / self.steps


def measure(name: str, batch: int, steps: int, warmup: int) -> dict:
    rng = np.random.default_rng(0)
    model = models.build(name, normalization=((128.0,) * 3, (64.0,) * 3))
    images = rng.integers(0, 256, size=(batch * (steps + warmup), 32, 32, 3), dtype=np.uint8)
    labels = np.eye(10, dtype="float32")[rng.integers(0, 10, len(images))]
    train.compile_for(model, train.TrainConfig(recipe="fast", epochs=1).resolved(), steps + warmup)
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
            "inference_images_per_s": round(infer_ips, 1)}  # fmt: skip


def run_context(precision: str) -> dict:
    """What every record in results.jsonl carries besides its figures: backend, device, versions, date."""
    return {
        "backend": keras.backend.backend(),
        "device": train.device(),
        "precision": precision,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def record(row: dict) -> None:
    """Append one result row to results.jsonl."""
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20_21", "preact164_32"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--mixed-precision", default="float32")
    p.add_argument("--torch", action="store_true", help="also measure the PyTorch reference (preact models)")
    p.add_argument("--torch-compile", action="store_true", help="with --torch: use torch.compile")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to results.jsonl")
    args = p.parse_args(argv)
    keras.mixed_precision.set_global_policy(args.mixed_precision)
    context = run_context(args.mixed_precision)
    header = f"{'framework:model':<22}{'batch':>6}{'train img/s':>14}{'infer img/s':>14}"
    print(f"{header}   {context['backend']} {context['device']}")
    for name in args.models:
        row = {**measure(name, args.batch, args.steps, args.warmup), **context}
        rows = [row]
        family, depth, _ = models.parse_name(name)
        if args.torch and family == "preact":
            rows.append({**row, **torch_row(name, depth, args), "framework": "torch"})
        for r in rows:
            label = f"{r.get('framework', 'keras')}:{name}"
            print(f"{label:<22}{args.batch:>6}{r['train_images_per_s']:>14}{r['inference_images_per_s']:>14}")
            if not args.no_record:
                record(r)


def torch_row(name: str, depth: int, args) -> dict:
    import torch_reference  # beside this file; needs PyTorch

    masks = ReLUPattern(models.parse_name(name)[2]).resolve(patterns.BOTTLENECK, [(depth - 2) // 9] * 3)
    torch_params = sum(
        p.numel() for p in torch_reference.PreActBottleneckResNet(depth, masks[0][0]).parameters()
    )
    keras_params = describe(models.build(name)).params
    if torch_params != keras_params:
        raise RuntimeError(f"PyTorch reference has {torch_params} parameters, Keras {keras_params}.")
    return torch_reference.measure(depth, args.batch, args.steps, args.warmup, compile=args.torch_compile)


if __name__ == "__main__":
    main()
