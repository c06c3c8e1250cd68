"""Top-1 accuracy of every zoo model in float32, mixed_float16 and mixed_bfloat16 inference.

Usage (rows are appended to ``benchmarks/results.jsonl`` in the format of ``throughput.py``)::

    KERAS_BACKEND=tensorflow python benchmarks/precision.py                  # full CIFAR-10 JPEG test split
    KERAS_BACKEND=jax python benchmarks/precision.py --subset 1000 --no-record

Each model is built under each Keras dtype policy and loaded with the same verified float32 zoo weights
(the normalisation and the classifier stay float32, as the builders make them). For every policy it
reports top-1, the drop in points from float32 and how many predictions agree with float32. ``BOUND`` is
the drop we state (docs/RELIABILITY.md), derived from the measurement, with margin; ``tests/test_numerics.py``
holds half precision to the float32 classes of the 40 shipped test images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import throughput  # beside this file: run_context, record

from relu_ratio import data, flags, models, zoo
from relu_ratio.zoo import registry

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# Top-1 points below float32, at most. Measured on the full CIFAR-10 JPEG test split (TensorFlow, CPU):
# drops of -0.01..0.01 points, 99.95-99.99 % (float16) and 99.64-99.75 % (bfloat16) of predictions
# unchanged; on a 1,000-image subset a 0.4 % disagreement is about 4 flips, so 1 point leaves margin.
BOUND = {"mixed_float16": 0.3, "mixed_bfloat16": 1.0}


def predictions(name: str, policy: str, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """Probabilities of zoo model ``name`` built under dtype ``policy`` (the global policy is restored)."""
    entry = zoo.info(name)
    weights = registry.verified_weights(entry)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = models.build(entry.builder_name, **entry.architecture["kwargs"])
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.load_weights(weights)
    outputs = [model(images[start : start + batch], training=False) for start in range(0, len(images), batch)]
    return np.concatenate([keras.ops.convert_to_numpy(o) for o in outputs]).astype(np.float32)  # eager


def measure(name: str, split: data.Split) -> list[dict]:
    """One row per policy: top-1 (%), drop from float32 (points), agreement with float32 (%)."""
    rows, reference = [], None
    for policy in POLICIES:
        predicted = predictions(name, policy, split.images).argmax(axis=1)
        reference = predicted if reference is None else reference
        top1 = 100.0 * float(np.mean(predicted == split.labels))
        agreement = 100.0 * float(np.mean(predicted == reference))
        rows.append({"benchmark": "precision", "model": name, "precision": policy, "images": len(split),
                     "top1": round(top1, 2), "agreement": round(agreement, 2)})  # fmt: skip
    for row in rows:
        row["drop"] = round(rows[0]["top1"] - row["top1"], 2)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    p = flags.Parser(prog="python benchmarks/precision.py", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=None, help="zoo names (default: every entry)")
    p.add_argument("--data", default=data.default_source(),
                   help="dataset source (default: $RELU_RATIO_DATA, else ../shared/data: CIFAR-10 JPEG)")
    p.add_argument("--subset", type=throughput.count, default=None,
                   help="a uniform random subset of this many images")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to results.jsonl")
    args = p.parse_args(argv)
    names = args.models or zoo.registry.with_weights(zoo.list())
    throughput.check_models(p, names, zoo_only=True)
    try:
        test = data.load(args.data, "test")
        split = data.subset(test, args.subset, 0, "--subset", f"{args.data}'s test split")
    except (ValueError, OSError) as error:
        p.error(str(error))
    print(f"{'model':<14}{'policy':<16}{'top-1 %':>9}{'drop':>7}{'agree %':>9}   "
          f"{keras.backend.backend()}, {len(split):,} images of {args.data}")  # fmt: skip
    rows = []
    for name in names:
        for row in measure(name, split):
            row = {**row, "data": args.data, **throughput.run_context(row["precision"])}
            print(f"{name:<14}{row['precision']:<16}{row['top1']:>9.2f}{row['drop']:>7.2f}{row['agreement']:>9.2f}")
            if not args.no_record:
                throughput.record(row)
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
