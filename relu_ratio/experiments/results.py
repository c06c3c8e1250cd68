"""The results page: each of the paper's tables answered by the zoo's trained entries.

:func:`page` reads the registry (every entry's top-1 on the CIFAR-10 (JPEG) test split, its epochs and its
per-epoch log) and the training queue's record of finished runs (the seeds of models trained more than
once), matches each entry to the experiment of its family and to the variant of its ReLU pattern
(:mod:`relu_ratio.experiments.specs`), and writes one table per experiment: ours beside the paper's
numbers, the difference N:M minus paired (± its standard error where there are seeds), and a one-line
verdict per claim. :func:`write` also draws two plots with matplotlib (accuracy by ReLU pattern; test
accuracy per epoch of each pair). ``check`` keeps the committed page current, as the README's zoo table is.

Command line::

    python -m relu_ratio.experiments results --update docs/RESULTS.md   # page and plots
    python -m relu_ratio.experiments results --check docs/RESULTS.md    # exit 1 if out of date

Example:
    >>> from relu_ratio.experiments import results
    >>> print(results.page().splitlines()[0])  # doctest: +SKIP
    # Results: the paper's claims, answered by the zoo
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from relu_ratio import files, models, queue, stats, train, zoo
from relu_ratio.experiments.report import png
from relu_ratio.experiments.specs import EXPERIMENTS, Experiment, Published
from relu_ratio.patterns import ReLUPattern

QUEUE = Path(__file__).resolve().parents[2] / "training" / "queue.json"
FIGURES = {"pattern": "accuracy_by_pattern.png", "curves": "test_accuracy_per_epoch.png"}
PAPER_EXPERIMENTS = ("table1", "table2", "figs7_8", "table3")  # erase_relu: no published number


@dataclasses.dataclass(frozen=True)
class Measured:
    """One zoo entry as an answer to an experiment: its variant and what was measured."""

    name: str  # zoo name, e.g. resnet20_21 or preact164_32.long
    depth: int
    label: str  # the experiment's variant label, e.g. "paired (1:1)"
    paired: bool
    epochs: int
    top1: float  # mean over seeds where several finished, else the entry's registered top-1
    sd: float | None  # over seeds
    seeds: int
    curve: tuple[float, ...]  # test top-1 (%) per epoch from the entry's metrics.csv; () if not kept
    precision: str | None = None  # the seeds' training precision, where several are pooled

    @property
    def group(self) -> str:
        return f"depth {self.depth}, {self.epochs} epochs"

    @property
    def summary(self) -> stats.MeanSD:
        """Top-1 over the seeds, for :func:`relu_ratio.stats.difference_error`."""
        return stats.MeanSD(self.top1, self.sd, self.seeds)


def variant_label(spec: Experiment, builder_name: str) -> str | None:
    """The label of ``spec``'s variant whose ReLU pattern equals ``builder_name``'s at its depth."""
    family, depth, pattern = models.parse_name(builder_name)
    kind, blocks = models.FAMILIES[family].kind, models.FAMILIES[family].blocks_per_stage(depth)
    mask = ReLUPattern(pattern).explicit(kind, blocks)
    for variant in spec.variants:
        other_family, _, other = models.parse_name(variant.model)
        if other_family == family and ReLUPattern(other).explicit(kind, blocks) == mask:
            return variant.label
    return None


def seed_scores() -> dict[str, tuple[str, list[float]]]:
    """``(precision, test top-1s (%))`` of every finished seed in the queue's record, by zoo name, in the
    precision most of that model's seeds trained in (runs in different precisions are not pooled). ``{}``
    without the queue file (an installed package, which ships the zoo but not ``training/``)."""
    if not QUEUE.is_file():
        return {}
    finished = queue.read_record(queue.finished_path(QUEUE)).runs
    groups: dict[tuple[str, str], list[float]] = {}
    for item in queue.load(QUEUE):
        record = finished.get(item.run_id)
        if record is not None and record.result.get("test_top1") is not None:
            groups.setdefault((item.name, str(record.precision)), []).append(100 * record.result["test_top1"])
    scores: dict[str, tuple[str, list[float]]] = {}
    for (name, precision), values in sorted(groups.items(), key=lambda group: -len(group[1])):
        scores.setdefault(name, (precision, values))
    return scores


def measured(spec: Experiment, seeds: dict[str, tuple[str, list[float]]]) -> list[Measured]:
    """The zoo's entries that answer ``spec`` (same family, a pattern among its variants)."""
    families = {models.parse_name(v.model)[0] for v in spec.variants}
    found = []
    for entry in zoo.registry.entries():
        name = entry.name
        family, depth, _ = models.parse_name(entry.builder_name)
        label = variant_label(spec, entry.builder_name) if family in families else None
        if label is None:
            continue
        precision, values = seeds.get(name, (None, []))
        scores = stats.mean_sd(values)
        several = scores.sd is not None
        found.append(Measured(
            name, depth, label, label == spec.variants[0].label, int(entry.training["epochs"]),
            scores.mean if several else entry.top1, scores.sd, max(scores.n, 1), _curve(name),
            precision if several else None,
        ))  # fmt: skip
    order = [v.label for v in spec.variants]
    return sorted(found, key=lambda m: (m.depth, m.epochs, order.index(m.label)))


def _curve(name: str) -> tuple[float, ...]:
    """Test top-1 (%) per epoch from the entry's training log (``metrics.csv``); ``()`` if it keeps none."""
    return tuple(100 * value for value in train.metric_column(zoo.store_dir() / name, "val_accuracy"))


@dataclasses.dataclass(frozen=True)
class Difference:
    """N:M minus paired in one group: ours (± standard error with seeds) and the verdict's inputs."""

    label: str
    depth: int
    group: str
    ours: float
    error: float | None  # standard error of the difference of the means; None with one seed on a side

    def text(self) -> str:
        spread = f" ± {self.error:.2f} s.e." if self.error is not None else " (one seed)"
        return f"{self.ours:+.2f}{spread}"


def differences(rows: list[Measured]) -> list[Difference]:
    """Each N:M entry minus the paired entry of its group (depth and epochs)."""
    found = []
    for row in rows:
        base = next((b for b in rows if b.paired and b.group == row.group), None)
        if row.paired or base is None:
            continue
        error = stats.difference_error(row.summary, base.summary)
        found.append(Difference(row.label, row.depth, row.group, row.top1 - base.top1, error))
    return found


def published_differences(spec: Experiment, label: str) -> list[tuple[Published, Published]]:
    """The paper's (paired, N:M) numbers for the variant ``label``, one pair per depth and dataset that
    has both, CIFAR-10 first."""
    paired = spec.variants[0].label
    pairs = [(base, variant) for variant in spec.variants if variant.label == label
             for base in spec.variants if base.group == variant.group and base.label == paired]  # fmt: skip
    found = []
    for dataset in ("CIFAR-10", "CIFAR-100"):
        for base, variant in pairs:
            theirs = [p for p in spec.published_for(variant.model) if p.dataset == dataset]
            baseline = [p for p in spec.published_for(base.model) if p.dataset == dataset]
            if theirs and baseline and base.model != variant.model:
                found.append((baseline[0], theirs[0]))
    return found


def _published_text(pairs: list[tuple[Published, Published]]) -> str:
    by_dataset: dict[str, list[str]] = {}
    for base, mine in pairs:
        depth = models.parse_name(mine.model)[1]
        by_dataset.setdefault(mine.dataset, []).append(f"{mine.top1 - base.top1:+.2f} at depth {depth}")
    return "; ".join(f"{', '.join(values)} ({dataset})" for dataset, values in by_dataset.items())


def verdict(ours: Difference | None, papers: list[tuple[Published, Published]]) -> str:
    """One line: reproduced (direction and size), direction only, inconclusive, not reproduced, or not
    testable here.

    Judged against the paper's first CIFAR-10 difference. With seeds on both sides, ours within two standard
    errors of zero is inconclusive, whatever its sign; beyond them, size counts as reproduced when ours lies
    within two standard errors of the paper's. With one seed only the direction can be judged.
    """
    mine = "" if ours is None else f"; ours on CIFAR-10 (JPEG): {ours.text()} at {ours.group}"
    if not papers:
        return f"not testable here: the paper gives no number for it (curves only){mine}"
    base, theirs = papers[0]
    published = theirs.top1 - base.top1
    depth = models.parse_name(theirs.model)[1]
    source = f"{theirs.source}, {theirs.dataset}, depth {depth}: {published:+.2f}"
    if theirs.dataset != "CIFAR-10":
        return f"not testable here (CIFAR-100 only: {source}){mine}"
    if ours is None:
        return f"pending: no trained pair yet ({source})"
    elsewhere = "" if ours.depth == depth else f", at depth {ours.depth} for the paper's {depth}"
    if ours.error is not None and abs(ours.ours) <= 2 * ours.error:
        return (f"inconclusive (within two standard errors of zero{elsewhere}): ours {ours.text()} at "
                f"{ours.group} ({source})")  # fmt: skip
    if (ours.ours > 0) != (published > 0) or ours.ours == 0:
        return f"not reproduced{elsewhere}: ours {ours.text()} at {ours.group} ({source})"
    if ours.error is not None and abs(ours.ours - published) <= 2 * ours.error:
        return f"reproduced (direction and size{elsewhere}): ours {ours.text()} at {ours.group} ({source})"
    return f"direction only{elsewhere}: ours {ours.text()} at {ours.group} ({source})"


def _section(spec: Experiment, rows: list[Measured]) -> list[str]:
    lines = [f"## {spec.title}", ""]
    note = " ".join(text for text in (spec.note, spec.zoo_note) if text)
    if note:
        lines += [note, ""]
    lines += ["| network | variant | zoo entry | epochs | seeds | ours: top-1 % | paper: top-1 % |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    order = [v.label for v in spec.variants]
    theirs = _published_cells(spec)  # each on the first of our rows of its network (rows are in order)
    table = [((row.depth, row.epochs, order.index(row.label)), row.depth, row.label, _ours_cells(row),
              theirs.pop((row.depth, row.label), "")) for row in rows]  # fmt: skip
    table += [((depth, math.inf, order.index(label)), depth, label, "| | |", cell)
              for (depth, label), cell in theirs.items()]  # fmt: skip
    for _, depth, label, ours, cell in sorted(table, key=lambda line: line[0]):
        lines.append(f"| depth {depth} | {label} | {ours} | {cell} |")
    diffs = differences(rows)
    lines += ["", "| N:M minus paired | ours (CIFAR-10 (JPEG)) | paper |", "| --- | --- | --- |"]
    labels = _labels(spec)
    for label in labels:
        theirs = _published_text(published_differences(spec, label)) or "no published number"
        ours = "; ".join(f"{d.text()} ({d.group})" for d in diffs if d.label == label) or "not trained yet"
        lines.append(f"| {label} | {ours} | {theirs} |")
    lines += ["", *(f"- **{label}**: {_claim(spec, diffs, label)[1]}" for label in labels)]
    return [*lines, ""]


def _published_cells(spec: Experiment) -> dict[tuple[int, str], str]:
    """``{(depth, variant label): the published top-1s}`` of ``spec``, for the row of that network."""
    cells = {}
    for variant in spec.variants:
        papers = spec.published_for(variant.model)
        if papers:
            depth = models.parse_name(variant.model)[1]
            cells[depth, variant.label] = "; ".join(f"{p.top1:.2f} ({p.dataset}, {p.source})" for p in papers)
    return cells


def _ours_cells(row: Measured) -> str:
    """The zoo entry, epochs, seeds and top-1 columns of ``row``."""
    top1 = f"{row.top1:.2f}" + (f" ± {row.sd:.2f}" if row.sd is not None else "")
    seeds = f"{row.seeds} ({row.precision})" if row.precision else f"{row.seeds}"
    return f"[`{row.name}`](../zoo/{row.name}/metadata.json) | {row.epochs} | {seeds} | {top1}"


def _labels(spec: Experiment) -> list[str]:
    """The N:M variants of ``spec`` (its first variant is the paired one), in order."""
    return list(dict.fromkeys(v.label for v in spec.variants[1:] if v.label != spec.variants[0].label))


def claims() -> str:
    """Markdown bullets, one per paper claim the zoo has a trained pair for: the table or figure, the
    variant and :func:`verdict` (the README's summary of the results page)."""
    seeds = seed_scores()
    lines = []
    for name in PAPER_EXPERIMENTS:
        spec = EXPERIMENTS[name]
        diffs = differences(measured(spec, seeds))
        for label in _labels(spec):
            ours, judged = _claim(spec, diffs, label)
            if ours is not None:
                where = spec.title.split(":")[0]
                lines.append(f"- {where}, {label}: {judged}")
    return "\n".join(lines)


def _claim(spec: Experiment, diffs: list[Difference], label: str) -> tuple[Difference | None, str]:
    """Ours for the variant ``label`` (:func:`_best`) and its :func:`verdict` against the paper's numbers."""
    papers = published_differences(spec, label)
    ours = _best(diffs, label, papers)
    return ours, verdict(ours, papers)


def _best(
    diffs: list[Difference], label: str, papers: list[tuple[Published, Published]]
) -> Difference | None:
    """The best-evidenced difference for ``label``: with a standard error first, then at the depth of the
    paper's difference that the verdict is judged against (``papers[0]``), then the deepest."""
    depth = models.parse_name(papers[0][1].model)[1] if papers else None
    mine = [d for d in diffs if d.label == label]
    return max(mine, key=lambda d: (d.error is not None, d.depth == depth, d.depth)) if mine else None


def tables() -> str:
    """Markdown: one section per paper table or figure (ours, the paper's, differences, verdicts)."""
    seeds = seed_scores()
    lines = []
    for name in PAPER_EXPERIMENTS:
        lines += _section(EXPERIMENTS[name], measured(EXPERIMENTS[name], seeds))
    return "\n".join(lines)


def page() -> str:
    """The results page (markdown), generated from the registry and the queue's record of finished runs."""
    seeds = seed_scores()
    lines = [
        TITLE,
        "",
        "Generated by `python -m relu_ratio.experiments results --update docs/RESULTS.md` from the zoo's "
        "entries and the training queue's record of finished runs (`training/queue.finished.json`); a test "
        "fails when this page is out of date.",
        "",
        "- **Ours**: top-1 on the CIFAR-10 (JPEG) test split (10,000 images re-encoded as JPEG, quality "
        "about 75), the `fast` recipe, the epochs given. With several seeds: their mean ± sd (each run's own "
        "evaluation of its final weights) in the precision most of them trained in, named beside their count "
        "(the zoo entry may be another seed or precision); with one: the zoo entry's registered top-1.",
        "- **Paper**: the published numbers on the original CIFAR-10 or CIFAR-100 (as marked), never ours: "
        "Zhao et al., \"Rethinking ReLU to Train Better CNNs\" (arXiv 1709.06247; 400 epochs, mean of 5 "
        "runs) and He et al. 2016, \"Identity Mappings in Deep Residual Networks\" (64k iterations, about "
        "164 epochs). The absolute levels differ (data, epochs); the differences N:M minus paired are what "
        "can be compared.",
        "- **N:M minus paired**: ours ± its standard error (s.e., from the seeds' spread) where both sides "
        "have several seeds; \"(one seed)\" where a side has one.",
        "- **Verdict**: *reproduced (direction and size)* when ours has the paper's sign, lies more than two "
        "standard errors from zero and within two of the paper's difference (needs seeds on both sides); "
        "*inconclusive* when ours lies within two standard errors of zero; *direction only* when the sign "
        "agrees (with one seed, all that can be judged); *not reproduced*; *not testable here* when the "
        "paper's number is for CIFAR-100 (the zoo has no CIFAR-100 entries; `python -m "
        "relu_ratio.experiments run table1 --dataset cifar100 --budget paper` trains them). A verdict names "
        "the depth where ours is not at the paper's.",
        "",
        f"![accuracy by ReLU pattern](results/{FIGURES['pattern']})",
        "",
        tables(),
    ]
    logged = [m.name for name in PAPER_EXPERIMENTS for m in measured(EXPERIMENTS[name], seeds) if m.curve]
    lines += ["## Test accuracy per epoch", ""]
    if logged:
        lines += [f"![test accuracy per epoch](results/{FIGURES['curves']})", "",
                  f"From each entry's `metrics.csv`: {', '.join(f'`{n}`' for n in logged)}."]  # fmt: skip
    else:
        lines += ["No entry keeps its per-epoch log yet (`metrics.csv`, kept with every entry registered "
                  "from now on); the plot appears with the first."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_patterns() -> bytes:
    """PNG: top-1 by ReLU pattern, a panel per experiment, a line per depth and epochs (error bars: sd)."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    seeds = seed_scores()
    fig = Figure(figsize=(4.2 * len(PAPER_EXPERIMENTS), 3.4))
    for ax, name in zip(fig.subplots(1, len(PAPER_EXPERIMENTS)), PAPER_EXPERIMENTS):
        spec = EXPERIMENTS[name]
        labels = list(dict.fromkeys(v.label for v in spec.variants))
        rows = measured(spec, seeds)
        for group in dict.fromkeys(r.group for r in rows):
            mine = [r for r in rows if r.group == group]
            ax.errorbar([labels.index(r.label) for r in mine], [r.top1 for r in mine],
                        yerr=[r.sd or 0.0 for r in mine], marker="o", capsize=3, label=group)  # fmt: skip
        ax.set_xticks(range(len(labels)), [label.split(" (")[0] for label in labels], fontsize=7)
        ax.set(title=spec.title.split(":")[0], ylabel="top-1 %, CIFAR-10 (JPEG)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not trained yet", ha="center", va="center", transform=ax.transAxes)
    return png(fig, dpi=100)


def plot_curves() -> bytes | None:
    """PNG: test top-1 per epoch of every entry that keeps its log, a panel per experiment; ``None`` if
    none does."""
    from matplotlib.figure import Figure

    seeds = seed_scores()
    panels = [(n, [r for r in measured(EXPERIMENTS[n], seeds) if r.curve]) for n in PAPER_EXPERIMENTS]
    panels = [(n, rows) for n, rows in panels if rows]
    if not panels:
        return None
    fig = Figure(figsize=(4.5 * len(panels), 3.4))
    for ax, (name, rows) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for row in rows:
            ax.plot(range(1, len(row.curve) + 1), row.curve, label=row.name)
        ax.set(title=EXPERIMENTS[name].title.split(":")[0], xlabel="epoch", ylabel="test top-1 %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return png(fig, dpi=100)


TITLE = "# Results: the paper's claims, answered by the zoo"


def write(path: str | os.PathLike) -> list[Path]:
    """Write the page to ``path`` and its plots to ``results/`` beside it; returns the files written.

    Raises:
        ValueError: ``path`` is a folder, or a file that is neither empty nor a results page (never
            overwritten); a file stands where the plots' folder goes, or a folder where a plot goes.
    """
    path = Path(path)
    _check_page(path)
    files.check_writable(path.parent, "results page's folder")
    figures = path.parent / "results"
    files.check_writable(figures, "results page's plots folder")  # before the page is written
    for name in FIGURES.values():
        files.check_file_place(figures / name, "results page's plot", "Move it away.")
    with files.folder_made(path.parent):  # removed again if the page cannot be written
        written = [files.write_atomic(path, page())]
    figures.mkdir(parents=True, exist_ok=True)
    written.append(files.write_atomic(figures / FIGURES["pattern"], plot_patterns()))
    curves = plot_curves()
    if curves is not None:
        written.append(files.write_atomic(figures / FIGURES["curves"], curves))
    return written


def _check_page(path: Path) -> None:
    """Refuse (``ValueError``) a ``path`` that is a folder, or a file that is neither empty nor a results
    page: never overwritten, nor said to be out of date."""
    if not files.may_replace(path, TITLE):  # a folder included
        raise ValueError(f"{path} is {'a folder' if path.is_dir() else 'a file that is not a results page'} "
                         f"(a page starts {TITLE!r}): give a new file or the page to update, e.g. "
                         "docs/RESULTS.md.")  # fmt: skip


def is_current(path: str | os.PathLike) -> bool:
    """Whether the page at ``path`` is what :func:`page` generates now and its plots exist; a ``ValueError``
    where ``path`` is a file that is no results page (:func:`write` would not replace it)."""
    path = Path(path)
    _check_page(path)
    current = page()
    figures = [path.parent / "results" / FIGURES["pattern"]]
    if "results/" + FIGURES["curves"] in current:
        figures.append(path.parent / "results" / FIGURES["curves"])
    return path.is_file() and files.read_text(path) == current and all(f.is_file() for f in figures)
