"""Model cards: ``zoo/<name>/README.md``, one page per entry, rendered from its ``metadata.json``.

Laid out like a Hugging Face model card (model details, uses and limitations, data, evaluation, training,
how to get started, citation) with the summary table of torchvision's weights pages and keras-hub's presets
(accuracy, parameters, FLOPs, weights file, how to load it). Every number about the model comes from its
metadata; the only other figures are the external measurement of what the JPEG data costs
(:data:`REFERENCE`), stated as such. ``zoo register`` writes the card into the entry's folder with the rest
of the entry (before the folder is published, so never half-written); ``python -m relu_ratio.zoo cards
--update`` writes every entry's card again (after a change here) and ``--check`` fails when one is out of
date (``tests/test_zoo.py`` checks the shipped cards). :func:`summary` is the card's first lines in short,
what ``python -m relu_ratio.zoo info NAME`` prints.

Example:
    >>> from relu_ratio import zoo
    >>> print(zoo.card.render(zoo.info("resnet20_21")))                  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import h5py

from relu_ratio import files, models
from relu_ratio.train.devices import DEVICE_SEPARATOR
from relu_ratio.train.record import METRICS_FILE
from relu_ratio.zoo import presets, registry
from relu_ratio.zoo.entry import CIFAR10_JPEG, ZooEntry, split_name

CARD_FILE = "README.md"
GENERATED = (
    "<!-- Generated from metadata.json by relu_ratio.zoo.card (python -m relu_ratio.zoo cards --update); "
    "do not edit. -->"
)
TIMES = "\N{MULTIPLICATION SIGN}"  # as in "32 times 32 images"
PAPER = "https://arxiv.org/abs/1709.06247"
JPEG_QUALITY = 75  # the data's JPEG quality (about; chroma subsampled), as the README states
# What the JPEG images cost, measured outside this package (reported in the project's issue tracker): an
# external reference recipe run unmodified, on the original CIFAR-10 test set and on these JPEG images.
REFERENCE = {"recipe": "airbench93", "source": "https://github.com/KellerJordan/cifar10-airbench",
             "original": 93.00, "original_runs": 50, "jpeg": 89.08, "jpeg_runs": 1}  # fmt: skip
BIBTEX = """@article{zhao2017rethinking,
  title   = {Rethinking {ReLU} to Train Better {CNNs}},
  author  = {Zhao, Gangming and Zhang, Zhaoxiang and Guan, He and Tang, Peng and Wang, Jingdong},
  journal = {arXiv preprint arXiv:1709.06247},
  year    = {2017}
}"""
# config.json keys of a training run shown in the card's training table, with their labels
RECIPE_KEYS = (
    ("recipe", "recipe"),
    ("epochs", "epochs"),
    ("batch_size", "batch size"),
    ("lr", "learning rate (peak)"),
    ("schedule", "schedule"),
    ("warmup_epochs", "warm-up epochs"),
    ("momentum", "momentum"),
    ("nesterov", "Nesterov"),
    ("weight_decay", "weight decay"),
    ("label_smoothing", "label smoothing"),
    ("ema", "EMA of the weights"),
    ("seed", "seed"),
)


def render(
    entry: ZooEntry, *, log: bool = False, docs: str | None = None, stored: str | None = "float16",
    own_store: bool = False,
) -> str:
    """The model card of ``entry`` (Markdown): a function of its metadata alone.

    Args:
        entry: the entry's metadata.
        log: the entry's folder holds its per-epoch log (``metrics.csv``): the card links to it.
        docs: the relative path from the entry's folder to the repository's ``docs/`` (``"../../docs"``),
            for links to the training and results pages; ``None`` (a store outside the repository): no links.
        stored: how its weights file stores the arrays (:func:`stored_precision`); ``None`` where the
            store does not hold the file (:attr:`ZooEntry.weights_git_object`).
        own_store: the entry is in a store of one's own, not the package's: the card says how to load it.
    """
    family, depth, ratio = models.parse_name(entry.builder_name)
    spec = models.FAMILIES[family]
    counts = models.counts(family, depth, entry.relu_pattern)
    training, config = entry.training, entry.training.get("config") or {}
    tolerance = registry.TOLERANCE
    description = presets.of_entry(entry).description
    title = spec.title.split(" (")[0]
    projections = f" (+{counts.projections} projections)" if counts.projections else ""
    top1, top5 = float(entry.metrics["top1"]), float(entry.metrics["top5"])
    measured_on = f"{entry.dataset} {entry.split} split ({entry.num_images:,} images)"
    stored_as = f" ({stored})" if stored else ""
    h, w, c = entry.input_shape
    pixels = f"{h}{TIMES}{w}"
    training_page = f"[TRAINING.md]({docs}/TRAINING.md#how-each-entry-was-trained)" if docs else None
    link_training = training_page or "docs/TRAINING.md"
    link_results = f"[RESULTS.md]({docs}/RESULTS.md)" if docs else "docs/RESULTS.md"

    out = [GENERATED, f"# {entry.name}", "", _sentence(description), ""]
    out += [
        "| | |",
        "| --- | --- |",
        f"| task | image classification: {entry.classes} classes, {pixels} RGB images |",
        f"| top-1 / top-5 | {top1:.2f} % / {top5:.2f} % on the {measured_on} |",
        f"| parameters | {entry.params:,} |",
        f"| FLOPs | {entry.flops / 1e6:.1f} M multiply-adds per {pixels} image |",
        f"| convolutions : ReLUs | {counts.convs}{projections} : {counts.relus} = "
        f"{counts.convs / counts.relus:.2f} |",
        f"| weights | {_weights_file(entry, stored)}, {entry.file_size:,} bytes, sha256 `{entry.sha256}` |",
        f'| load | `zoo.load("{entry.name}")` or `models.build("{entry.builder_name}", '
        f'weights="{entry.weights_key}")` |',
        f"| paper | Zhao et al., *Rethinking ReLU to Train Better CNNs*, [arXiv 1709.06247]({PAPER}) |",
        "",
    ]
    if entry.weights_git_object:
        out += _fetch_section(entry, own_store)
    if own_store:
        out += ["This entry is in a store of one's own, not the package's zoo: `zoo.load`, "
                "`models.build(..., weights=...)` and the commands below find it where `$RELU_RATIO_ZOO` "
                "names the folder that holds its folder.", ""]  # fmt: skip

    blocks = spec.blocks_per_stage(depth)
    keras_file = f"{_folder(entry.name)}.keras"
    out += [
        "## Model",
        "",
        f"One of the {title}, depth {depth}: {len(blocks)} stages of "
        f"{' + '.join(map(str, blocks))} blocks, {counts.convs} convolutions on the main path"
        f"{projections}. Its ReLU pattern is {ratio}: {_masks(entry.relu_pattern, spec.kind.slots)}, so "
        f"{counts.relus} ReLU layers for {counts.convs} convolutions ({_module(entry.relu_pattern)}). "
        f"It takes raw images ({pixels}{TIMES}{c}, `uint8` or float 0-255; the per-channel normalisation, "
        f"mean {_numbers(entry.mean)} and std {_numbers(entry.std)}, is built in) and outputs the "
        f"probabilities of the classes {', '.join(f'`{n}`' for n in entry.class_names)}.",
        "",
        "## Intended use and limitations",
        "",
        "- For research and teaching on the convolution:ReLU ratio: comparing ReLU patterns, reproducing "
        f"the paper's claims, and as pretrained features for fine-tuning on small ({pixels}) images "
        "(`zoo.load(name, classes=...)` or `include_top=False`).",
        f"- Inputs should look like the training data: {pixels} RGB photographs of these "
        f"{entry.classes} classes. Other sizes need `include_top=False` or a new classifier.",
        f"- Its accuracy was measured only on the {entry.dataset} {entry.split} split; nothing is known "
        "about other data, distribution shift, adversarial robustness, calibration or fairness.",
        f"- One training run (seed {config.get('seed', 'not recorded')}): a difference between two entries "
        f"smaller than the seed-to-seed spread ({link_results}) is not evidence.",
        *_plain_limitation(family, link_results),
        "- Not for production or safety-critical use.",
        "",
        "## Data",
        "",
        _data(entry, config),
        "",
        "## Evaluation",
        "",
        f"Top-1 {top1:.2f} %, top-5 {top5:.2f} % on the {measured_on}, measured by `zoo register` on the "
        f"stored{stored_as} weights. Measure it again (fails when either figure is more than "
        f"{tolerance} points away):",
        "",
        "```bash",
        f"python -m relu_ratio.zoo evaluate {entry.name}  # data: $RELU_RATIO_DATA, ../shared/data or --data",
        "```",
        "",
        "Or check in seconds, offline, that the weights compute on your machine and backend what they"
        " computed when the accuracy was measured (the probabilities on 40 images shipped with the package):",
        "",
        "```bash",
        f"python -m relu_ratio.zoo verify {entry.name}",
        "```",
        "",
        "## Training",
        "",
        "| setting | value |",
        "| --- | --- |",
    ]
    for key, label in RECIPE_KEYS:
        value = training["epochs"] if key == "epochs" else config.get(key)
        if key == "ema":  # a flag added after the first runs: absent or None means none
            value = value or False
        out.append(f"| {label} | {'not recorded' if value is None else _value(value)} |")
    precision = training.get("precision") or config.get("mixed_precision") or "not recorded"
    wall = training.get("wall_time_s")
    out += [
        f"| precision | {precision} |",
        f"| device | {_where(training)} |",
        f"| wall clock | {_hours(wall)} |",
        f"| training cost | {registry.training_time(entry)} |",
        f"| commit | {_commits(config.get('commit'), training.get('commit'))} |",
        f"| versions at registration | relu_ratio {entry.package_version}, Keras {entry.keras_version} |",
        "",
        "The command it was trained with, as recorded "
        f"(`--dataset {config.get('dataset', entry.data_source)}` is where the data lay on the training "
        "machine, `--out` where the run was written: give your own):",
        "",
        "```bash",
        training["command"],
        "```",
        "",
        _register(entry, own_store) + f" How every entry was trained: {link_training}."
        + (f" The per-epoch log: [`{METRICS_FILE}`]({METRICS_FILE})." if log else ""),
        "",
        "## How to use",
        "",
        "```python",
        "from relu_ratio import models, zoo",
        "",
        f'model = zoo.load("{entry.name}")  # weights checked against their sha256 first',
        f'model = models.build("{entry.builder_name}", weights="{entry.weights_key}")  # the same network',
        f"probabilities = model.predict(images)  # images: uint8, shape (N, {h}, {w}, {c})",
        "```",
        "",
        "Export it as a TensorFlow SavedModel (signature `serve`, `uint8` images in, probabilities out), or "
        "as a `.keras` file that plain Keras loads without relu_ratio:",
        "",
        "```bash",
        f"python -m relu_ratio.zoo export {entry.name} {_folder(entry.name)}_saved_model/",
        f"python -c \"from relu_ratio import zoo; zoo.load('{entry.name}').save('{keras_file}')\"",
        "```",
        "",
        "## Citation",
        "",
        "```bibtex",
        BIBTEX,
        "```",
        "",
    ]
    return "\n".join(out)


def summary(entry: ZooEntry) -> str:
    """What ``python -m relu_ratio.zoo info NAME`` prints: the lines a reader looks for first, from the
    entry's metadata (``--json`` prints all of it; the card, :func:`render`, says the rest in words).

    Example:
        >>> print(summary(registry.info("resnet20_21")))  # doctest: +SKIP
        resnet20_21: one of the ResNets: depth 20, ReLU pattern 2:1, 100 epochs on CIFAR-10 (JPEG), ...
          ReLU pattern   2:1 (`01`)
          top-1 / top-5  88.74 % / 99.57 % on the CIFAR-10 (JPEG) test split (10,000 images)
          ...
    """
    h, w, _ = entry.input_shape
    config, epochs = entry.training.get("config") or {}, entry.training["epochs"]
    if registry.has_weights(entry):
        weights = f"{entry.weights_file} in the store, {entry.file_size:,} bytes (its sha256 checked on load)"
    else:
        weights = f"not in the store: python -m relu_ratio.zoo fetch {entry.name}"
    rows = {
        "load": f'zoo.load("{entry.name}") or models.build("{entry.builder_name}", '
        f'weights="{entry.weights_key}")',
        "ReLU pattern": registry.pattern_text(entry),
        "top-1 / top-5": f"{entry.top1:.2f} % / {float(entry.metrics['top5']):.2f} % on the {entry.dataset} "
        f"{entry.split} split ({entry.num_images:,} images)",
        "parameters": f"{entry.params:,}",
        "multiply-adds": f"{entry.flops / 1e6:.1f} M per {h}{TIMES}{w} image",
        "training": f"recipe {config.get('recipe', 'not recorded')}, {epochs} epoch{'s' * (epochs != 1)}, "
        f"seed {config.get('seed', 'not recorded')}; {registry.training_time(entry)}",
        "weights": weights,
        "model card": os.fspath(registry.entry_dir(entry.name) / CARD_FILE),
        "trained with": f"{entry.training['command']}  # --dataset, --out: the training machine's",
        "all metadata": f"python -m relu_ratio.zoo info {entry.name} --json",
    }
    width = max(map(len, rows))
    head = f"{entry.name}: {presets.of_entry(entry).description}"
    return "\n".join([head, *(f"  {key:<{width}}  {value}" for key, value in rows.items())])


OWN_STORE = "~/my_zoo"  # the store of one's own that a card registers a run trained again into
OWN_TAG = "mine"  # and the tag of its name there (after the entry's own tag), which no shipped entry's has


def _register(entry: ZooEntry, own_store: bool) -> str:
    """The card's command that registers a run trained again: never under the entry's own name, which
    would clash with the entry (``--force`` would replace it, the package's own entry included). An entry
    of the package's zoo: into a store of one's own, then read from there; one of one's own store (named by
    ``$RELU_RATIO_ZOO``): beside it, in that store."""
    base, tag = split_name(entry.name)
    name = f"{base}.{tag}_{OWN_TAG}" if tag else f"{base}.{OWN_TAG}"  # one per entry, never the entry's own
    if own_store:
        return (
            "Register the finished run beside this entry, under a name of its own (it measures the run and "
            f"writes its card; `--force` with the name `{entry.name}` would replace this entry): "
            f"`python -m relu_ratio.zoo register <run folder> --name {name}` (into `$RELU_RATIO_ZOO`, or "
            "give `--store`)."
        )
    return (
        "Register the finished run in a store of your own, under a name of its own (it measures the run and "
        f"writes its card; the package's zoo already holds `{entry.name}`, which `--force` would replace): "
        f"`python -m relu_ratio.zoo register <run folder> --store {OWN_STORE} --name {name}`, then read it "
        f"from there: `RELU_RATIO_ZOO={OWN_STORE} python -m relu_ratio.zoo evaluate {name}`, or "
        f'`zoo.load("{name}")` with `$RELU_RATIO_ZOO` set to that folder. While `$RELU_RATIO_ZOO` is set, '
        "the zoo is that store alone: the package's entries are not seen."
    )


def _weights_file(entry: ZooEntry, stored: str | None) -> str:
    """The card's weights cell: the file, linked, and its precision; or where it is kept instead."""
    if entry.weights_git_object:
        return f"`{entry.weights_file}`, not shipped: the git object `{entry.weights_git_object}`"
    return f"[`{entry.weights_file}`]({entry.weights_file}) ({stored})"


def _fetch_section(entry: ZooEntry, own_store: bool) -> list[str]:
    """For an entry registered without its weights file: the command that fetches it."""
    why = "" if own_store else ", to keep the package small"
    return [
        f"The weights file is not shipped{why}: this folder holds the entry's metadata and this card. Fetch "
        "the file from the repository's history (in a clone with that history, not a shallow one); it is "
        "checked against the sha256 above before it is written:",
        "",
        "```bash",
        f"python -m relu_ratio.zoo fetch {entry.name}",
        "```",
        "",
    ]


def _data(entry: ZooEntry, config: dict) -> str:
    train = config.get("train_images")
    train = f"{train:,}" if isinstance(train, int) else "not recorded"
    if entry.dataset != CIFAR10_JPEG:
        return (
            f"Trained on {entry.dataset} ({train} training images; data source `{entry.data_source}` as "
            f"recorded) and measured on its {entry.split} split ({entry.num_images:,} images)."
        )
    ref = REFERENCE
    runs = ref["original_runs"]
    original = f"{ref['original']:.2f} % on the original CIFAR-10 test set, mean of {runs} runs"
    return (
        f"**CIFAR-10 (JPEG)**: the CIFAR-10 images ({train} for training, {entry.num_images:,} in the "
        f"{entry.split} split) re-encoded as JPEG, quality about {JPEG_QUALITY}, chroma subsampled. "
        "Published CIFAR-10 figures, the paper's included, are on the original images, which the JPEG "
        "encoding has degraded: an external reference recipe run unmodified, "
        f"[{ref['recipe']}]({ref['source']}) ({original}), reaches {ref['jpeg']:.2f} % on these JPEG images "
        f"({_runs(ref['jpeg_runs'])}; an external measurement, made outside this package). So compare "
        "differences between networks with the published ones, not levels."
    )


def _plain_limitation(family: str, link_results: str) -> list[str]:
    """For a plain network: that plain networks degrade with depth (the paper's Table I), and that a ResNet
    entry is the better start for features."""
    if family != "plain":
        return []
    return [
        "- A plain network (no shortcut connections): plain networks train worse the deeper they are, the "
        f"degradation the paper's Table I measures for each ReLU ratio ({link_results}); for pretrained "
        "features, a ResNet entry is the better start."
    ]


def _where(training: dict) -> str:
    """The devices it trained on, each with its Keras backends where the run recorded them (a run resumed
    on another machine may have changed backend), else the backend it finished on."""
    devices = (training.get("result") or {}).get("devices") or {}
    if not any("backends" in spent for spent in devices.values()):
        device, backend = training["device"], training["backend"]
        if len(devices) > 1:  # recorded before the backends were: only the last one's is known
            return f"{device} (Keras backend recorded only where it finished: {backend})"
        return f"{device} (Keras on {backend})"
    return DEVICE_SEPARATOR.join(
        f"{device} (Keras on {' and '.join(spent['backends'])})" if spent.get("backends")
        else f"{device} (Keras backend not recorded)"
        for device, spent in devices.items()
    )


def _runs(count: int) -> str:
    return "one seed" if count == 1 else f"{count} runs"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _masks(pattern: str | list, slots: tuple[str, ...]) -> str:
    """The explicit ReLU masks in words: one mask for every block, or each stage's."""
    legend = f"one character per ReLU slot, {', '.join(slots)}; 0 = ReLU removed"
    if isinstance(pattern, str):
        return f"the mask `{pattern}` in every block ({legend})"
    stages = "; ".join(
        f"stage {i}: " + (f"`{s[0]}` in every block" if len(set(s)) == 1 else " ".join(f"`{m}`" for m in s))
        for i, s in enumerate(pattern, start=1)
    )
    return f"per block masks ({legend}): {stages}"


def _module(pattern: str | list) -> str:
    masks = pattern if isinstance(pattern, str) else "".join("".join(stage) for stage in pattern)
    if "0" in masks:
        return "the paper's *proportional module*: fewer ReLUs than convolutions in a block"
    return "the usual *paired module*, a ReLU beside every convolution: the baseline the paper compares with"


def _numbers(values) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in values) + ")"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _commits(started: str | None, finished: str | None) -> str:
    """The source commit a run trained with: the one it started with (its ``config.json``, kept on resume)
    and, where another one finished it, that one too.

    >>> _commits("abc", "abc"), _commits("abc", "def"), _commits(None, "def"), _commits("abc", None)
    ('`abc`', '`abc` (started), `def` (finished)', '`def`', '`abc` (started)')
    """
    if started is None or started == finished:
        return _code(finished)
    if finished is None:
        return f"{_code(started)} (started)"
    return f"{_code(started)} (started), {_code(finished)} (finished)"


def _hours(seconds: float | None) -> str:
    return "not recorded" if seconds is None else f"{seconds / 3600:.2f} h"


def _code(value: str | None) -> str:
    return f"`{value}`" if value else "not recorded"


def _folder(name: str) -> str:
    return name.replace(".", "_")


def docs_link(folder: Path) -> str | None:
    """``"../../docs"`` when ``folder``'s store is the repository's ``zoo/`` (beside ``docs/``), else
    ``None``."""
    return "../../docs" if (folder.parent.parent / "docs" / "TRAINING.md").is_file() else None


def card_of(entry: ZooEntry, folder: str | os.PathLike) -> str:
    """The card of ``entry`` as it belongs in ``folder`` (which holds, or will hold, the entry)."""
    folder = Path(folder)
    weights = folder / entry.weights_file
    if entry.weights_git_object:  # the same card whether or not the file has been fetched
        stored = None
    else:
        stored = stored_precision(weights) if weights.is_file() else "float16"
    docs = docs_link(folder)  # the repository's zoo/, else the installed package's store, else one's own
    own_store = docs is None and not registry.is_shipped(folder.parent)
    return render(entry, log=(folder / METRICS_FILE).is_file(), docs=docs, stored=stored, own_store=own_store)


def stored_dtypes(path: str | os.PathLike) -> collections.Counter:
    """How many arrays of each dtype the weights file ``path`` holds, e.g. ``Counter({'float16': 64})``."""
    dtypes = collections.Counter()

    def count(_, item) -> None:  # h5py's walk stops at the first callback that returns something
        if isinstance(item, h5py.Dataset):
            dtypes[str(item.dtype)] += 1

    with h5py.File(path, "r") as file:
        file.visititems(count)
    return dtypes


def stored_precision(path: str | os.PathLike) -> str:
    """``"float16"``, or what else the weights file holds (``zoo register`` keeps an array float16 cannot
    hold in float32: :func:`relu_ratio.zoo.publish.write_float16`)."""
    dtypes = stored_dtypes(path)
    others = sum(n for dtype, n in dtypes.items() if dtype != "float16")
    if not others:
        return "float16"
    return (f"float16; {others} of {dtypes.total()} arrays {', '.join(sorted(set(dtypes) - {'float16'}))}: "
            "values beyond float16's range")  # fmt: skip


def write(entry: ZooEntry, folder: str | os.PathLike) -> Path:
    """Write ``entry``'s card into ``folder`` (atomically); returns its path."""
    return files.write_atomic(Path(folder) / CARD_FILE, card_of(entry, folder))


def update(names: list[str] | None = None, check: bool = False) -> list[str]:
    """Bring the cards of ``names`` (default: every entry of the store) up to date.

    Returns the names whose card was missing or out of date (with ``check``, nothing is written).
    """
    stale = []
    for name in registry.stored_names() if names is None else names:
        folder = registry.entry_dir(name)
        entry = registry.info(name)
        path = folder / CARD_FILE
        try:
            current = path.read_text(encoding="utf-8") if path.is_file() else None
        except UnicodeDecodeError:  # not UTF-8 text: not the card, which is written again
            current = None
        if current != card_of(entry, folder):
            stale.append(name)
            if not check:
                write(entry, folder)
    return stale
