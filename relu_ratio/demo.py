"""The README's first command: load the zoo's most accurate CIFAR-10 model, classify the 40 CIFAR-10 test
images shipped in the package, then build the paired and the Type 1 ResNet-164 and print what describe()
measures.

Run ``python -m relu_ratio.demo``; every figure it prints is measured there and then (nothing downloads).
"""

from __future__ import annotations

import contextlib
import io
import os

import keras
import numpy as np

from relu_ratio import data, describe, files, flags, models, zoo

SHOWN = 10  # predictions printed one per line; the accuracy covers all 40 images
README_SHOWN = 4  # of those, the README's demo block shows the first four and the last
OUTPUT_START, OUTPUT_END = "<!-- demo:output:start -->", "<!-- demo:output:end -->"


def demo_entry(classes: tuple[str, ...] | None = None) -> zoo.ZooEntry:
    """The registered entry with the highest top-1 (of equals, the first name in sorted order) of those
    that classify ``classes`` (default: the shipped images' classes, CIFAR-10's, in their order) and whose
    weights the store holds (:func:`relu_ratio.zoo.registry.has_weights`).

    >>> best = max(zoo.registry.with_weights(zoo.list_models()), key=lambda name: zoo.info(name).top1)
    >>> demo_entry().top1 == zoo.info(best).top1
    True
    """
    listed = zoo.list_models()
    stored = [zoo.info(name) for name in zoo.registry.with_weights(listed)]
    classes = data.sample().info.class_names if classes is None else classes
    entries = [entry for entry in stored if tuple(entry.class_names) == tuple(classes)]
    if not entries:
        chosen = zoo.registry.chosen_store() is not None
        where = " (chosen by $RELU_RATIO_ZOO; unset it to use the shipped zoo)" if chosen else ""
        held = f"no entry of CIFAR-10's classes ({len(stored)} of other classes)" if stored else "no entries"
        if listed and not stored:
            held = f"no entry with its weights file ({len(listed)} to fetch: python -m relu_ratio.zoo fetch)"
        raise zoo.ZooError(f"the zoo store {zoo.store_dir()}{where} holds {held}; register a CIFAR-10 run "
                           "there (python -m relu_ratio.zoo register RUN).")  # fmt: skip
    return max(entries, key=lambda entry: entry.top1)  # max keeps the first of equals


def main(names: tuple[str, ...] = ("preact164_11", "preact164_32")) -> None:
    print(f"relu_ratio demo (Keras {keras.__version__}, backend {keras.backend.backend()})")
    images = data.sample()
    entry = demo_entry(images.info.class_names)
    model = zoo.load(entry.name)
    probabilities = model.predict(images.images, verbose=0)
    predicted = probabilities.argmax(axis=1)
    names_of = images.info.class_names
    print(f"\nloaded the zoo's most accurate entry: {describe(model)}")
    print(f"classifying the {len(images)} CIFAR-10 (JPEG) test images shipped in the package:")
    for i in range(0, len(images), len(images) // SHOWN):
        mark = "ok" if predicted[i] == images.labels[i] else "WRONG"
        print(f"  image {i:2d}: {names_of[predicted[i]]:<10} {probabilities[i].max():6.1%}  "
              f"(true: {names_of[images.labels[i]]}) {mark}")  # fmt: skip
    correct = int(np.sum(predicted == images.labels))
    print(
        f"{entry.name}: {correct}/{len(images)} correct ({correct / len(images):.0%}) on these images; "
        f"registered top-1 on all {entry.num_images:,} {entry.dataset} test images: "
        f"{entry.metrics['top1']:.2f} % ({entry.training['epochs']} epochs)."
    )
    print("\nthe paper's networks, built and measured:")
    for name in names:
        print(describe(models.build(name)))


def readme_block(output: str) -> str:
    """What the README shows of the demo's ``output``, fenced: every line after the first (the Keras
    version and backend, which vary), of the image lines the first :data:`README_SHOWN` and the last."""
    lines = output.splitlines()[1:]
    while lines and not lines[0].strip():
        lines.pop(0)
    images = [i for i, line in enumerate(lines) if line.startswith("  image ")]
    if len(images) > README_SHOWN + 1:
        lines[images[README_SHOWN] : images[-1]] = ["  ..."]
    return "\n".join(["```", *lines, "```"])


def update_readme(path: str | os.PathLike) -> bool:
    """Run :func:`main` and put what it prints (:func:`readme_block`) between the demo markers of ``path``;
    returns whether the file already held it."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main()
    return files.replace_between(path, OUTPUT_START, OUTPUT_END, readme_block(printed.getvalue()))


def command(argv: list[str] | None = None) -> int:
    """``python -m relu_ratio.demo``: :func:`main`; a zoo that gives no model is said in one line (exit 2).
    ``--update README.md`` writes what it prints into the README's demo block instead."""
    parser = flags.Parser(
        prog="python -m relu_ratio.demo",
        description="Load the zoo's most accurate CIFAR-10 model, classify the 40 CIFAR-10 (JPEG) test "
        "images shipped in the package, then build the paper's paired and Type 1 ResNet-164 and print what "
        "relu_ratio.describe measures. Nothing downloads.",
    )
    markers = f"{OUTPUT_START} ... {OUTPUT_END}"
    parser.add_argument("--update", metavar="FILE", type=flags.path,
                        help=f"write the output into FILE (README.md), between {markers}")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.update:  # a FILE that lacks the markers is said before the demo runs
            files.replace_between(args.update, OUTPUT_START, OUTPUT_END, "", check=True)
    except ValueError as error:
        return flags.report_error(error)
    try:
        if args.update:
            current = update_readme(args.update)
            print(f"{args.update}: {'already current' if current else 'demo block written'}")
        else:
            main()
    except zoo.ZooError as error:  # an empty store, a damaged entry
        return flags.report_error(error)
    return 0


if __name__ == "__main__":
    flags.exit_with(command)
