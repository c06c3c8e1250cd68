"""Where the time of a Keras training step goes: the profiler's op statistics, grouped.

Usage (prints a Markdown table, records nothing; under TensorFlow it needs ``pip install xprof`` to read
the trace)::

    python benchmarks/profile_step.py --models resnet20_21 preact56_32 preact164_32 \
        --precisions float32 mixed_bfloat16 [--stock-layers]
    KERAS_BACKEND=torch python benchmarks/profile_step.py --models preact56_32 --precisions float32

Each model is trained on random images with the training CLI's own step (``train.compile_for``, and the fused
BatchNormalization and, under PyTorch, the copy-free convolution of ``relu_ratio.train.kernels`` unless
``--stock-layers``). Under TensorFlow Keras' ``TensorBoard`` callback traces ``--steps`` steps after
``--warmup`` untraced ones and xprof's ``framework_op_stats`` gives every op's self-time; under PyTorch
``torch.profiler`` traces the same steps. The self-times are summed here into the groups of :data:`GROUPS`
and divided by the traced steps. The step time is the traced steps' wall-clock time; the groups can add up
to more than it where two ops overlapped (TF runs independent ops on its inter-op threads) and to less
where the executor (or Python, between PyTorch's eager ops) was between ops.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import keras

sys.path.insert(0, str(Path(__file__).parent))
import throughput  # beside this file: the training setup the throughput benchmark times

if TYPE_CHECKING:
    import torch

# (group, test on (op type, op name): TensorFlow's, or PyTorch's aten op name twice); the first match wins
GROUPS = (
    ("conv forward", lambda t, n: ("Conv2D" in t and "Backprop" not in t) or t == "aten::mkldnn_convolution"),
    ("conv backward (input)", lambda t, n: "Conv2DBackpropInput" in t),
    ("conv backward (filter)", lambda t, n: "Conv2DBackpropFilter" in t),
    ("conv backward (input and filter)", lambda t, n: t == "aten::convolution_backward"),
    ("BatchNorm", lambda t, n: "BatchNorm" in t or "batch_norm" in t or re.search(r"_bn\d*(_\d+)?/", n)),
    ("ReLU", lambda t, n: t in ("Relu", "ReluGrad", "_MklRelu", "_MklReluGrad", "aten::clamp_min",
                                "aten::threshold_backward", "aten::relu")),
    ("optimizer", lambda t, n: "/sgd/" in n.lower() or t.startswith(("ResourceApply", "aten::_foreach_"))),
    ("residual adds and gradient sums", lambda t, n: t in ("AddN", "AddV2", "Add", "_MklAdd", "_MklAddN",
                                                           "aten::add", "aten::add_")),
    ("casts", lambda t, n: t == "Cast"),
    # PyTorch does a cast's work in aten::copy_ too: under mixed precision its casts are counted here
    ("copies (layouts; PyTorch's casts)", lambda t, n: t in ("Transpose", "aten::copy_", "aten::contiguous")),
    ("input pipeline", lambda t, n: t in ("Dataset", "IteratorGetNext")),
    ("other (input scaling, pooling, classifier, loss, metrics)", lambda t, n: True),
)


def group_of(op_type: str, op_name: str) -> str:
    return next(group for group, matches in GROUPS if matches(op_type, op_name))


def torch_op_self_times(profiler: torch.profiler.profile) -> list[tuple[str, str, float]]:
    """(op name, op name, total self-time in microseconds) of every op ``torch.profiler`` recorded."""
    return [(e.key, e.key, float(e.self_cpu_time_total)) for e in profiler.key_averages()]


def op_self_times(logdir: Path) -> list[tuple[str, str, float]]:
    """(op type, op name, total self-time in microseconds) of every host op in the trace under ``logdir``."""
    from xprof.convert import raw_to_tool_data

    paths = sorted(map(str, logdir.rglob("*.xplane.pb")))
    if not paths:
        raise RuntimeError(f"the profiler wrote no trace under {logdir}")
    raw, _ = raw_to_tool_data.xspace_to_tool_data(paths, "framework_op_stats", {})
    table = json.loads(raw)[0]
    columns = [c["id"] for c in table["cols"]]
    kind, name, self_time = (columns.index(c) for c in ("type", "operation", "total_self_time"))
    rows = ([cell.get("v") for cell in row["c"]] for row in table["rows"])
    return [(r[kind], r[name], float(r[self_time])) for r in rows if r[kind] != "IDLE"]


class _Clock(keras.callbacks.Callback):
    def __init__(self, first: int, last: int):
        super().__init__()
        self.first, self.last, self.start, self.seconds = first, last, None, 0.0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.first:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.last and self.start is not None:
            self.seconds = time.perf_counter() - self.start


class _TorchTrace(_Clock):
    """The clock, and ``torch.profiler`` over the same steps (``profiler`` once they have run)."""

    profiler: torch.profiler.profile | None = None

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch == self.first:
            import torch

            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.start()
        super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        super().on_train_batch_end(batch, logs)
        if batch == self.last:
            self.profiler.stop()


def profile(name: str, precision: str, steps: int, warmup: int, batch: int, fast_kernels: bool) -> dict:
    """Step time (ms), images/s and milliseconds per step of each op group, for one model and precision."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        model, images, labels = throughput.training_setup(name, batch, warmup + steps, fast_kernels)
        traced = (warmup, warmup + steps - 1)
        with tempfile.TemporaryDirectory() as logdir:
            if keras.backend.backend() == "torch":
                callbacks = [clock := _TorchTrace(*traced)]
            else:
                callbacks = [
                    keras.callbacks.TensorBoard(logdir, profile_batch=(traced[0] + 1, traced[1] + 1),
                                                write_graph=False, update_freq=10**9),
                    clock := _Clock(*traced),
                ]  # fmt: skip
            model.fit(images, labels, batch_size=batch, verbose=0, shuffle=False, callbacks=callbacks)
            ops = torch_op_self_times(clock.profiler) if isinstance(clock, _TorchTrace) else (
                op_self_times(Path(logdir))
            )  # fmt: skip
    finally:
        keras.mixed_precision.set_global_policy(previous)
    groups = collections.Counter()
    for op_type, op_name, micros in ops:
        groups[group_of(op_type, op_name)] += micros / 1000 / steps
    step_ms = 1000 * clock.seconds / steps
    return {"model": name, "precision": precision, **throughput.layers_of(model),
            "step_ms": step_ms, "images_per_s": batch / step_ms * 1000, "groups": dict(groups)}  # fmt: skip


def markdown(results: list[dict]) -> str:
    """One column per profiled setting, one row per op group that took time in one of them (ms per step, and
    its share of the ops' sum)."""
    head = [
        f"{r['model']} {r['precision']} ({r['batch_norm']} BN"
        + (f", {r['conv']} conv)" if "conv" in r else ")")
        for r in results
    ]
    lines = ["| ms per step | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(results)]
    for group, _ in GROUPS:
        if not any(r["groups"].get(group) for r in results):
            continue
        cells = []
        for r in results:
            ms, total = r["groups"].get(group, 0.0), sum(r["groups"].values())
            cells.append(f"{ms:.1f} ({100 * ms / total:.0f} %)")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    totals = {
        "sum of op self-times": [f"{sum(r['groups'].values()):.1f}" for r in results],
        "step (wall clock)": [f"{r['step_ms']:.1f}" for r in results],
        "images/s": [f"{r['images_per_s']:.0f}" for r in results],
    }
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in totals.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20_21", "preact56_32", "preact164_32"])
    p.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                   choices=["float32", "mixed_bfloat16", "mixed_float16"])  # fmt: skip
    p.add_argument("--steps", type=throughput.count, default=5, help="traced steps")
    p.add_argument("--warmup", type=throughput.at_least(0), default=3, help="untraced steps first (tracing, "
                   "compilation)")  # fmt: skip
    p.add_argument("--batch", type=throughput.count, default=128)
    p.add_argument("--stock-layers", action="store_true",
                   help="profile Keras' own BatchNormalization and Conv2D (not relu_ratio.train.kernels')")
    args = p.parse_args(argv)
    throughput.check_models(p, args.models)
    if keras.backend.backend() not in ("tensorflow", "torch"):
        p.error(f"profile_step.py profiles the TensorFlow and PyTorch backends, not "
                f"{keras.backend.backend()}: run it with KERAS_BACKEND=tensorflow or torch.")  # fmt: skip
    if keras.backend.backend() == "tensorflow":
        try:  # before anything trains
            import xprof.convert  # noqa: F401  (op_self_times reads the trace with it)
        except ImportError:
            p.error("under TensorFlow, profile_step.py reads the trace with xprof: pip install -e "
                    "'.[profile]' (or run it with KERAS_BACKEND=torch)")  # fmt: skip
    results = [
        profile(name, precision, args.steps, args.warmup, args.batch, not args.stock_layers)
        for name in args.models
        for precision in args.precisions
    ]
    print(markdown(results))


if __name__ == "__main__":
    main()
