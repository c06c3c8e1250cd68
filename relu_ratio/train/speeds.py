"""Measured training speed per CPU class and Keras backend, and the hint the training CLI prints at a run's
start when another backend trained faster on a CPU of this class.

The measurements are package data, ``speeds.json`` (``relu_ratio/train/``), generated from the rows of
``benchmarks/results.jsonl`` by ``python benchmarks/throughput.py --update-tables`` (which writes
docs/BENCHMARKS.md's tables per class from the same entries; ``tests/test_benchmarks.py`` fails while either
is stale): the package does not read the benchmarks folder, which is not installed, and every figure in the
file is the figure of one recorded row (its date and note come with it). A row counts if it measured what
the CLI trains on a CPU (:func:`cli_rows`); each entry is the fastest such row per CPU class, model, batch,
precision and backend, since other work on the machine only ever slows a run down (``timeit``'s rule).

Example:
    >>> table = [{"cpu_class": "AVX2", "model": "resnet20_21", "batch": 128, "precision": "float32",
    ...           "backend": backend, "train_images_per_s": speed} for backend, speed in
    ...          (("tensorflow", 76.0), ("torch", 229.0))]
    >>> in_float32 = {"tensorflow": "float32", "torch": "float32"}
    >>> faster_backend(table, "AVX2", "resnet20_21", "tensorflow", in_float32)
    ('torch', 'resnet20_21', 3.01)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from relu_ratio.train.devices import CPU_CLASS_FLAGS, is_gpu

SPEEDS_FILE = Path(__file__).with_name("speeds.json")
KEY = ("cpu_class", "model", "batch", "precision", "backend")  # one entry per value of these
MIN_RATIO = 1.3  # a hint only above this: repeated runs on a shared machine moved by 10 to 30 %


def cli_rows(rows: Iterable[dict]) -> list[dict]:
    """The rows of results.jsonl that measured what the training CLI trains on a CPU: Keras' training step
    on the host path (not ``--augment-on device``), on the backend's fast layers where it has them: under
    TensorFlow the fused BatchNorm; under PyTorch not a row of its stock layers (``conv`` ``"stock"``).
    PyTorch rows from before its substitutes (2026-12-03) measured the stock layers, then the CLI's; the
    fastest row of a key is what counts, so they give way to newer ones.

    >>> cli_rows([{"framework": "keras", "backend": "tensorflow", "batch_norm": "stock",
    ...            "train_images_per_s": 1.0}])
    []
    """
    return [
        row for row in rows
        if row.get("framework") == "keras" and "train_images_per_s" in row
        and row.get("augment_on", "host") == "host" and not is_gpu(row.get("device", ""))
        and (row.get("backend") != "tensorflow" or row.get("batch_norm") == "fused")
        and row.get("conv") != "stock"  # PyTorch's stock layers measured on purpose (--stock-layers)
    ]  # fmt: skip


def fastest_runs(rows: Iterable[dict]) -> list[dict]:
    """One entry per :data:`KEY` (``cpu_class`` ``None`` for rows recorded before the class was): the
    fastest of :func:`cli_rows`, with the count of runs behind it (of its layers: BatchNorm fused or stock,
    PyTorch's convolution copy-free or stock), its date and note, sorted by key.

    >>> row = {"framework": "keras", "backend": "torch", "model": "m", "batch": 8, "precision": "float32",
    ...        "cpu_class": "AVX2", "date": "2026-12-02"}
    >>> [e["train_images_per_s"] for e in fastest_runs([{**row, "train_images_per_s": s} for s in (3, 5)])]
    [5]
    """
    groups: dict[tuple, list[dict]] = {}
    for row in cli_rows(rows):
        groups.setdefault(tuple(row.get(k) for k in KEY), []).append(row)
    entries = []
    for key, runs in groups.items():
        best = max(runs, key=lambda row: row["train_images_per_s"])
        alike = [row for row in runs if _layers(row) == _layers(best)]
        extra = {"note": best["note"]} if best.get("note") else {}
        entries.append({**dict(zip(KEY, key)), "train_images_per_s": best["train_images_per_s"],
                        "runs": len(alike), "date": best.get("date"), **extra})  # fmt: skip
    return sorted(entries, key=lambda e: tuple(str(e[k]) for k in KEY))


def _layers(row: dict) -> tuple:
    """What a row's training step ran: its BatchNorm and convolution layers (rows from before the copy-free
    convolution name no ``conv``: they ran Keras' own)."""
    return row.get("batch_norm"), row.get("conv") or "stock"


def read(path: str | Path = SPEEDS_FILE) -> list[dict]:
    """The entries of the package's ``speeds.json`` (``[]`` if it cannot be read: a hint is never worth
    stopping a run for)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []


def faster_backend(
    table: list[dict], cpu_class: str, model: str, backend: str, precisions: dict[str, str]
) -> tuple[str, str, float] | None:
    """``(other backend, model measured, ratio)``: the backend that trained fastest relative to ``backend``
    on a CPU of ``cpu_class``, each backend in the precision it would train in (``precisions``), if by at
    least :data:`MIN_RATIO`; else ``None``. The ratio is ``model``'s if measured on both, else the smallest
    over the models measured on both. Only the x86 classes (defined by their flags) are compared."""
    if cpu_class not in CPU_CLASS_FLAGS:
        return None
    speed = {
        (e["model"], e["batch"], e["backend"]): e["train_images_per_s"] for e in table
        if e["cpu_class"] == cpu_class and precisions.get(e["backend"]) == e["precision"]
    }  # fmt: skip
    best = None
    for other in sorted({b for _, _, b in speed} - {backend}):
        ratios = [(round(speed[m, n, other] / speed[m, n, backend], 2), m) for m, n, b in speed
                  if b == other and (m, n, backend) in speed]  # fmt: skip
        same = [r for r in ratios if r[1] == model]
        if ratios:
            ratio, measured = min(same or ratios)
            if ratio >= MIN_RATIO and (best is None or ratio > best[2]):
                best = (other, measured, ratio)
    return best


def hint(
    table: list[dict], cpu_class: str, model: str, backend: str, precisions: dict[str, str], command: str
) -> str | None:
    """The line the CLI prints when :func:`faster_backend` finds one: that backend, the measured ratio and
    ``command`` run under it; ``None`` otherwise.

    >>> table = [{"cpu_class": "AVX2", "model": "m", "batch": 8, "precision": "float32", "backend": b,
    ...           "train_images_per_s": s} for b, s in (("tensorflow", 1.0), ("torch", 3.0))]
    >>> print(hint(table, "AVX2", "m", "tensorflow", {"tensorflow": "float32", "torch": "float32"}, "cmd"))
    hint: Keras on torch trained m 3.0x as fast as on tensorflow on an AVX2 CPU (float32; docs/BENCHMARKS.md): KERAS_BACKEND=torch cmd
    """  # noqa: E501
    found = faster_backend(table, cpu_class, model, backend, precisions)
    if found is None:
        return None
    other, measured, ratio = found
    mine, theirs = precisions[backend], precisions[other]
    precision = mine if mine == theirs else f"{theirs} against {mine}"
    return (f"hint: Keras on {other} trained {measured} {ratio}x as fast as on {backend} on an {cpu_class} "
            f"CPU ({precision}; docs/BENCHMARKS.md): KERAS_BACKEND={other} {command}")  # fmt: skip
