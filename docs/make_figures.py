"""Draw the README's picture: the paired and the Type 1 (3:2) pre-activation bottleneck side by side.

The ReLUs each block keeps or erases are read from :mod:`relu_ratio.patterns` (the masks the builders use),
not drawn by hand. Run from the repository root::

    python docs/make_figures.py          # writes docs/blocks.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone
from matplotlib.patches import FancyBboxPatch

from relu_ratio.patterns import BOTTLENECK, ReLUPattern

OUT = Path(__file__).parent / "blocks.png"
CONVS = ("conv 1x1", "conv 3x3", "conv 1x1")  # the bottleneck's main path, one per ReLU slot
PANELS = (
    ("1:1", "paired (1:1): preact164_11"),
    ("3:2", "Type 1 (3:2): preact164_32"),
)
COLOURS = {"bn": "#dbe9f6", "relu": "#f4a259", "conv": "#8cc5a0", "add": "#ffffff"}


def block_layers(spec: str) -> list[tuple[str, str]]:
    """(kind, label) from input to output for one bottleneck under ``spec``; kind ``erased`` for a removed
    ReLU slot."""
    mask = ReLUPattern(spec).resolve(BOTTLENECK, [1, 1, 1])[0][0]
    layers = []
    for keep, conv in zip(mask, CONVS):
        relu = ("relu", "ReLU") if keep else ("erased", "ReLU erased")
        layers += [("bn", "BatchNorm"), relu, ("conv", conv)]
    return [*layers, ("add", "+")]


def _box(ax, x: float, y: float, kind: str, label: str) -> None:
    width, height = 2.2, 0.62
    erased = kind == "erased"
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor="white" if erased else COLOURS[kind], edgecolor="#999999" if erased else "#333333",
            linestyle="--" if erased else "-", linewidth=1.2,
        )
    )  # fmt: skip
    ax.text(x, y, label, ha="center", va="center", fontsize=10, color="#999999" if erased else "black")
    if erased:
        ax.plot([x - 0.8, x + 0.8], [y - 0.18, y + 0.18], color="#c0392b", linewidth=1.5)


def draw(path: str | Path = OUT) -> Path:
    fig = Figure(figsize=(7.2, 6.6))
    axes = fig.subplots(1, 2)
    for ax, (spec, title) in zip(axes, PANELS):
        layers = block_layers(spec)
        step = 0.9
        ys = [-(i + 1) * step for i in range(len(layers))]
        ax.annotate("", xy=(0, ys[0] + 0.31), xytext=(0, 0.35), arrowprops={"arrowstyle": "->"})
        for (kind, label), y, nxt in zip(layers, ys, [*ys[1:], None]):
            _box(ax, 0, y, kind, label)
            if nxt is not None:
                ax.annotate("", xy=(0, nxt + 0.31), xytext=(0, y - 0.31), arrowprops={"arrowstyle": "->"})
        # the identity shortcut, from the block's input to the addition
        ax.plot([0, 1.6, 1.6], [0.15, 0.15, ys[-1]], color="#555555", linewidth=1.2)
        ax.annotate("", xy=(1.1, ys[-1]), xytext=(1.6, ys[-1]), arrowprops={"arrowstyle": "->"})
        ax.annotate("", xy=(0, ys[-1] - 0.9), xytext=(0, ys[-1] - 0.31), arrowprops={"arrowstyle": "->"})
        relus = sum(kind == "relu" for kind, _ in layers)
        ax.set_title(f"{title}\n3 convolutions : {relus} ReLUs", fontsize=11)
        ax.set_xlim(-1.6, 2.0)
        ax.set_ylim(ys[-1] - 1.0, 0.5)
        ax.axis("off")
    fig.suptitle("One pre-activation bottleneck block, paired and proportional", fontsize=12)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    print(draw(sys.argv[1] if len(sys.argv) > 1 else OUT))
