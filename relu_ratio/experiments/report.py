"""Merge an experiment's run directories into ``results.csv``, ``results.md`` and ``accuracy.png``.

Ours and the papers' numbers stand in separate, labelled columns: ours say on which dataset, with how many
epochs, images and seeds they were measured; the papers' say which paper and dataset they come from.

Example:
    >>> from relu_ratio import experiments
    >>> report = experiments.collect("runs/experiments/table2-tiny")   # doctest: +SKIP
    >>> print(report.markdown)                                           # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from relu_ratio import data, files, stats, train
from relu_ratio.experiments.runner import RECORD_FILE, REPORT_FILES, Run, check_outputs, plan, read_record
from relu_ratio.experiments.specs import EXPERIMENTS, Budget, Experiment

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn
    from matplotlib.figure import Figure

COLUMNS = (
    "experiment", "group", "variant", "model", "seed", "status", "epochs_done", "epochs", "dataset",
    "train_images", "test_images", "test_top1", "test_top5", "best_test_top1", "wall_time_s", "device",
    "run_dir",
)  # fmt: skip


@dataclasses.dataclass
class Report:
    """What :func:`collect` found and wrote."""

    rows: list[dict]
    markdown: str
    csv_path: Path
    markdown_path: Path
    figure_path: Path | None

    def counts(self) -> dict[str, int]:
        statuses = [row["status"] for row in self.rows]
        return {s: statuses.count(s) for s in ("done", "partial", "failed", "pending") if s in statuses}


def collect(out: str | os.PathLike, figure: bool = True) -> Report:
    """Read every planned run under ``out`` (written by ``experiments run``) and write the three reports
    (:data:`~relu_ratio.experiments.runner.REPORT_FILES`; a folder in the place of one is refused, naming
    it, before any is written)."""
    root = Path(out)
    record = read_record(root)
    csv_path, markdown_path, figure_path = (root / name for name in REPORT_FILES)
    check_outputs(root, REPORT_FILES if figure else REPORT_FILES[:2])
    spec = EXPERIMENTS.get(record["experiment"])
    if spec is None:
        raise ValueError(
            f"{root / RECORD_FILE} records experiment {record['experiment']!r}, which is not in "
            f"relu_ratio.experiments.EXPERIMENTS ({', '.join(EXPERIMENTS)}): an experiment of one's own is "
            f"read back from there, so add it first, EXPERIMENTS[{record['experiment']!r}] = experiment."
        )
    chosen = Budget(**{**record["budget"], "seeds": tuple(record["budget"]["seeds"])})
    rows = [_row(spec, item) for item in plan(spec, chosen, dataset=record["dataset"], out=root)]
    # every run reads one source: a run not started yet is labelled like those whose config names the data
    named = {row["dataset"] for row in rows if row["dataset"]}
    label = named.pop() if len(named) == 1 else data.DATASET_LABELS.get(record["dataset"], record["dataset"])
    for row in rows:
        row["dataset"] = row["dataset"] or label
    files.write_atomic(csv_path, _csv(rows))
    markdown = render_markdown(spec, rows, chosen.describe())
    files.write_atomic(markdown_path, markdown)
    return Report(rows, markdown, csv_path, markdown_path, plot(spec, rows, figure_path) if figure else None)


STATUS = {"finished": "done", "failed": "failed", "partial": "partial", "waiting": "pending"}  # by run state


def _row(spec: Experiment, item: Run) -> dict:
    out = item.out
    record = train.RunRecord.read(out)
    config, result = record.config, record.result
    curve = [100 * value for value in record.curve]
    status = STATUS[record.state]
    return {
        "experiment": spec.name, "group": item.variant.group, "variant": item.variant.label,
        "model": item.variant.model, "seed": item.seed, "status": status,
        "epochs_done": record.epochs_done,
        "epochs": config.get("epochs", item.config.epochs),
        "dataset": data.DATASET_LABELS.get(record.dataset_name, record.dataset_name),  # None: not yet known
        "train_images": config.get("train_images"), "test_images": config.get("test_images"),
        "test_top1": _percent(result.get("test_top1")), "test_top5": _percent(result.get("test_top5")),
        "best_test_top1": _percent(result.get("best_test_top1")),
        "wall_time_s": result.get("wall_time_s"), "device": result.get("device"), "run_dir": os.fspath(out),
        "curve": curve,  # test accuracy (%) per epoch, for the figure; not a CSV column
    }  # fmt: skip


def render_markdown(spec: Experiment, rows: list[dict], budget_text: str) -> str:
    """One line per variant: our mean ± sd over finished seeds beside the published numbers."""
    done = [r for r in rows if r["status"] == "done"]
    datasets = sorted({r["dataset"] for r in done}) or sorted({r["dataset"] for r in rows})
    epochs = sorted({r["epochs_done"] for r in done})
    lines = [
        f"### {spec.title}",
        "",
        f"Ours: measured here on {', '.join(map(str, datasets))} with the {budget_text}"
        + (f" (epochs completed: {'/'.join(map(str, epochs))})" if epochs else "")
        + f"; {len(done)} of {len(rows)} runs finished. Paper: the published numbers (original CIFAR, "
        "paper recipe), not ours." + (f" {spec.note}" if spec.note else ""),
        "",
        "| group | variant | model | ours: top-1 % | seeds | paper: top-1 % |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant in spec.variants:
        mine = [r for r in done if r["model"] == variant.model]
        scores = [r["test_top1"] for r in mine]
        ours = stats.mean_sd(scores).text(one="") or "—"
        numbers = ", ".join(str(r["seed"]) for r in mine)
        seeds = f"{'seed' if len(mine) == 1 else 'seeds'} {numbers}" if mine else "—"  # "0" read as no seeds
        paper = "; ".join(
            f"{p.top1:.2f} ({p.dataset}, {p.source})" for p in spec.published_for(variant.model)
        )
        lines.append(
            f"| {variant.group} | {variant.label} | `{variant.model}` | {ours} | {seeds} | {paper or '—'} |"
        )
    pending = [r for r in rows if r["status"] != "done"]
    if pending:
        lines += [
            "",
            "Not finished: " + ", ".join(f"{r['model']} seed {r['seed']} ({r['status']})" for r in pending),
        ]
    return "\n".join(lines) + "\n"


def plot(spec: Experiment, rows: list[dict], path: Path) -> Path:
    """Test accuracy vs epoch, one panel per group, mean over seeds (paper Figs. 6-8 style)."""
    return files.write_atomic(path, png(figure(spec, rows)))


def png(fig: Figure, dpi: int = 110) -> bytes:
    """The PNG of the matplotlib figure ``fig``, laid out tight, without the matplotlib version in its
    metadata: the same drawing gives the same bytes (the figures the repository tracks change only when
    they do)."""
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=dpi, metadata={"Software": None})
    return image.getvalue()


def figure(spec: Experiment, rows: list[dict]) -> Figure:
    """The :func:`plot` figure (a matplotlib ``Figure``, no pyplot: the caller's backend is left alone): whole
    epochs on the x axis, and a panel whose runs have not finished an epoch says so."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    groups = list(dict.fromkeys(v.group for v in spec.variants))
    fig = Figure(figsize=(4.5 * len(groups), 3.6))
    axes = fig.subplots(1, len(groups), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for variant in (v for v in spec.variants if v.group == group):
            curves = [r["curve"] for r in rows if r["model"] == variant.model and r["curve"]]
            if not curves:
                continue
            length = min(map(len, curves))
            mean = [statistics.mean(c[i] for c in curves) for i in range(length)]
            ax.plot(range(1, length + 1), mean, marker="o" if length < 10 else None,
                    label=f"{variant.label} (n={len(curves)})")  # fmt: skip
        ax.set(title=f"{spec.name}: {group}", xlabel="epoch", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.set_xlim(0.5, max(len(line.get_xdata()) for line in ax.lines) + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no epoch finished yet", ha="center", va="center", transform=ax.transAxes)
            ax.set(xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: ("" if row[k] is None else row[k]) for k in COLUMNS} for row in rows)
    return buffer.getvalue()


def _percent(value) -> float | None:
    return None if value is None or not math.isfinite(value) else round(100 * float(value), 2)


