"""Inference images/s of models before and after ``relu_ratio.fuse``, measured in the same run.

Usage (rows are appended to ``benchmarks/results.jsonl`` with device and versions; ``--no-record`` to skip)::

    python benchmarks/fusion.py                                            # every zoo entry
    python benchmarks/fusion.py --models resnet20_11 preact164_32 --batch 256 --repeats 5

A name registered in the zoo is loaded with its trained weights (``weights: zoo``); any other builder name
(``preact110_32``) is built with random weights and the input normalisation (``weights: random``): fine for
speed, and it returns logits, so that its max abs diff is not hidden by a saturated softmax. Both models
get the same random uint8 batch; after ``--warmup`` calls each (tracing, compilation), ``--repeats`` timed
``predict_on_batch`` calls alternate between the two and the median is reported. Not a test: it only
prints and records what it measured.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import throughput  # beside this file: run_context, record

from relu_ratio import flags, models, zoo
from relu_ratio.fuse import fuse

NORMALIZATION = ((128.0,) * 3, (64.0,) * 3)  # for randomly initialised models, as benchmarks/throughput.py


def load(name: str) -> tuple[keras.Model, str]:
    """The zoo entry ``name`` with its weights, else the builder's model with random weights."""
    if name in zoo.list():
        return zoo.load(name), "zoo"
    # logits: with random weights the softmax saturates and hides any difference
    return models.build(name, normalization=NORMALIZATION, classifier_activation=None), "random"


def seconds_per_call(model: keras.Model, x: np.ndarray) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = np.asarray(model.predict_on_batch(x))
    return time.perf_counter() - start, out


def measure(name: str, batch: int, repeats: int, warmup: int) -> dict:
    model, weights = load(name)
    fused, report = fuse(model, return_report=True)
    x = np.random.default_rng(0).integers(0, 256, size=(batch, *model.input_shape[1:])).astype("float32")
    for _ in range(warmup):
        seconds_per_call(model, x), seconds_per_call(fused, x)
    times: dict[str, list[float]] = {"unfused": [], "fused": []}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(repeats):  # alternate, so that load from elsewhere on the machine hits both alike
        for key, m in (("unfused", model), ("fused", fused)):
            seconds, outputs[key] = seconds_per_call(m, x)
            times[key].append(seconds)
    ips = {key: batch / statistics.median(t) for key, t in times.items()}
    return {
        "framework": "keras",
        "benchmark": "fusion",
        "model": name,
        "weights": weights,
        "batch": batch,
        "repeats": repeats,
        "inference_images_per_s": round(ips["unfused"], 1),
        "fused_inference_images_per_s": round(ips["fused"], 1),
        "layers": report.layers_before,
        "fused_layers": report.layers_after,
        "macs": report.macs_before,
        "fused_macs": report.macs_after,
        "convs_merged": report.convs_merged,
        "max_abs_diff": float(np.max(np.abs(outputs["unfused"] - outputs["fused"]))),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | weights | layers | M multiply-adds / image | unfused img/s | fused img/s | speed-up "
        "| max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        speedup = r["fused_inference_images_per_s"] / r["inference_images_per_s"]
        lines.append(
            f"| {r['model']} | {r['weights']} | {r['layers']} -> {r['fused_layers']} | "
            f"{r['macs'] / 1e6:,.2f} -> {r['fused_macs'] / 1e6:,.2f} | {r['inference_images_per_s']} | "
            f"{r['fused_inference_images_per_s']} | {speedup:.2f}x | {r['max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = flags.Parser(prog="python benchmarks/fusion.py", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=None, help="zoo entries or builder names; default: the zoo")
    p.add_argument("--batch", type=throughput.count, default=256)
    p.add_argument("--repeats", type=throughput.count, default=5)
    p.add_argument("--warmup", type=throughput.at_least(0), default=2)
    p.add_argument("--no-record", action="store_true", help="print only; do not append to results.jsonl")
    args = p.parse_args(argv)
    names = args.models or zoo.registry.with_weights(zoo.list())
    throughput.check_models(p, names)
    context = throughput.run_context(keras.mixed_precision.global_policy().name)
    rows = []
    for name in names:
        row = {**measure(name, args.batch, args.repeats, args.warmup), **context}
        rows.append(row)
        if not args.no_record:
            throughput.record(row)
    print(f"{context['backend']}, {context['device']}, batch {args.batch}, median of {args.repeats} calls\n")
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
