"""``python -m relu_ratio.zoo list|info|verify|evaluate|export|register|fetch|table|cards``: the zoo from
the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from relu_ratio import flags
from relu_ratio.zoo import reference, registry
from relu_ratio.zoo.entry import WeightsNotStoredError, ZooError

EXAMPLES = {
    "list": "python -m relu_ratio.zoo list 'preact*'",
    "info": "python -m relu_ratio.zoo info resnet20_21",
    "verify": "python -m relu_ratio.zoo verify resnet20_21 preact164_32",
    "evaluate": "python -m relu_ratio.zoo evaluate preact164_32 --data ../shared/data",
    "export": "python -m relu_ratio.zoo export resnet20_21 exported/resnet20_21",
    "register": "python -m relu_ratio.zoo register ~/relu_runs/zoo/resnet20_21-seed0",
    "fetch": "python -m relu_ratio.zoo fetch NAME    # an entry registered with --weights-in-git",
    "table": "python -m relu_ratio.zoo table --update README.md",
    "cards": "python -m relu_ratio.zoo cards --check",
}


def parser() -> flags.Parser:
    parser = flags.Parser(prog="python -m relu_ratio.zoo", description=__doc__, allow_abbrev=False,
                          **flags.examples(*EXAMPLES.values()))  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="names of the registered models")
    p.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'preact*'")
    name_help = "a zoo entry's name, e.g. resnet20_11 (see `list`)"
    p = sub.add_parser("info", help="an entry's summary: accuracy, size, training, weights, card (--json: "
                       "its whole metadata record)")  # fmt: skip
    p.add_argument("name", help=name_help)
    p.add_argument("--json", action="store_true", help="print the entry's whole metadata record as JSON")
    p = sub.add_parser("verify", help="compare the outputs on 40 fixed images with the registered ones")
    p.add_argument("names", nargs="*", help="entries (default: all)")
    p = sub.add_parser("evaluate", help=f"re-measure accuracy; fails beyond {registry.TOLERANCE} points")
    p.add_argument("name", help=name_help)
    p.add_argument(
        "--data",
        type=flags.path,
        help="dataset source (default: $RELU_RATIO_DATA or ../shared/data for CIFAR-10 JPEG)",
    )
    p = sub.add_parser("export", help="write the TensorFlow SavedModel (signature 'serve', uint8 in)")
    p.add_argument("name", help=name_help)
    p.add_argument("dir", help="where to write it: a new or empty folder")
    p = sub.add_parser("register", help="add a finished training run to the zoo")
    p.add_argument("run_dir", type=flags.path,
                   help="a finished training run's folder (config.json, result.json, weights)")  # fmt: skip
    p.add_argument("--name", help="zoo name (default: the run's config 'model'; <model>.<tag> for the "
                   "queue's folder <model>.<tag>-seed<k>; for a zoo entry's folder, its name)")
    p.add_argument("--data", type=flags.path,
                   help="dataset source for the test split (default: the run's config 'dataset')")
    p.add_argument("--store", type=flags.path,
                   help="registry directory (default: $RELU_RATIO_ZOO or the repository's zoo/)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing entry of the same name")
    p.add_argument("--weights-in-git", metavar="REVISION:PATH",
                   help="publish the entry without its weights file, which this git object of the store's "
                   "repository keeps byte for byte (HEAD:zoo/preact164_32/model.weights.h5)")  # fmt: skip
    p = sub.add_parser("fetch", help="write the weights file of an entry registered without it, from git")
    p.add_argument("names", nargs="+", help="entries registered with --weights-in-git")
    p = sub.add_parser("table", help="the zoo tables (README.md, docs/TRAINING.md), from the registry; each "
                       "name links to its model card from the page's folder (printed: the current folder)")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--update",
        metavar="FILE",
        type=flags.path,
        help=f"rewrite each generated block it holds: between {registry.TABLE_START} and "
        f"{registry.TABLE_END} (and the {registry.TRAINING_START} and {registry.CLAIMS_START} blocks)",
    )
    group.add_argument("--check", metavar="FILE", type=flags.path, help="fail if FILE's table is out of date")
    p = sub.add_parser("cards", help="the model cards (<store>/<name>/README.md), from each entry's metadata")
    p.add_argument("names", nargs="*", help="entries (default: all); without a flag, print their cards")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--update", action="store_true", help="write each card that is missing or out of date")
    group.add_argument("--check", action="store_true", help="fail if a card is missing or out of date")
    for name, command in sub.choices.items():
        command.allow_abbrev = False  # `--forc` must not silently mean --force
        for key, value in flags.examples(EXAMPLES[name]).items():  # epilog and formatter_class
            setattr(command, key, value)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, OSError) as error:  # ZooError, bad data (a corrupt image); a full or unwritable dir
        return flags.report_error(error)


def _run(args: argparse.Namespace) -> int:
    if args.command == "list":
        names = registry.list_models(args.pattern)
        if not names and (args.pattern is not None or registry.missing_store()):  # like grep: exit 1, and why
            registered = ", ".join(registry.list_models()) or registry.none_registered()
            what = "no zoo entries" if args.pattern is None else f"no zoo entry matches {args.pattern!r}"
            print(f"{what}; registered: {registered}", file=sys.stderr)
            return 1
        print("\n".join(names))
    elif args.command == "info" and args.json:
        print(json.dumps(registry.info(args.name).to_json(), indent=2))
    elif args.command == "info":
        from relu_ratio.zoo import card

        print(card.summary(registry.info(args.name)))
    elif args.command == "verify":
        names = _known(args.names)
        if not names and registry.missing_store():  # a mistyped $RELU_RATIO_ZOO verifies nothing: no pass
            print(f"no zoo entry to verify; registered: {registry.none_registered()}", file=sys.stderr)
            return 1
        return _verify(names or registry.list_models(), named=bool(names))
    elif args.command == "fetch":
        from relu_ratio.zoo.git_weights import fetch

        for name in _known(args.names):
            print(f"{name}: {fetch(name)}")
    elif args.command == "evaluate":
        # a progress bar with time left on a terminal; one line when done in a log (Keras verbose=2)
        result = registry.evaluate(args.name, args.data, verbose=1 if sys.stdout.isatty() else 2)
        other_images = result["num_images"] != result["registered_num_images"]
        registered_on = (f" (of {result['registered_num_images']:,} images, {result['registered_data']})"
                         if other_images else "")  # fmt: skip
        for key in ("top1", "top5"):
            print(
                f"{key}: measured {result[key]:.2f} %, registered {result[f'registered_{key}']:.2f} %"
                f"{registered_on}, difference {result[f'diff_{key}']:+.2f} points "
                f"({result['num_images']:,} images, {result['data']})"
            )
        if max(abs(result["diff_top1"]), abs(result["diff_top5"])) > registry.TOLERANCE:
            why = ": the registered figures are of other images" if other_images else ""
            print(f"FAIL: more than {registry.TOLERANCE} points from the registered accuracy{why}",
                  file=sys.stderr)  # fmt: skip
            return 1
    elif args.command == "export":
        from relu_ratio.zoo.saved_model import check_export_target, export

        registry.entry_dir(args.name)  # an unknown name or a bad target is said first, not after "exporting"
        check_export_target(args.dir)
        start = time.monotonic()
        print(f"exporting {args.name}: the SavedModel is built from the verified weights on first use "
              "(a minute or so), then copied from the cache ...", file=sys.stderr, flush=True)  # fmt: skip
        print(export(args.name, args.dir))
        print(f"exported {args.name} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    elif args.command == "register":
        from relu_ratio.zoo.publish import register

        entry = register(args.run_dir, args.name, args.store, data=args.data, overwrite=args.force,
                         weights_in_git=args.weights_in_git)  # fmt: skip
        print(
            f"registered {entry.name}: top-1 {entry.metrics['top1']:.2f} %, "
            f"top-5 {entry.metrics['top5']:.2f} %"
        )
    elif args.command == "cards":
        return _cards(args)
    elif args.check:
        if not registry.update_table(args.check, check=True):
            print(
                f"{args.check}: the zoo table is out of date; "
                f"run: python -m relu_ratio.zoo table --update {args.check}"
            )
            return 1
    elif args.update:
        registry.update_table(args.update)
    else:
        print(registry.markdown_table())
    return 0


def _known(names: Sequence[str]) -> list[str]:
    """``names``, each checked to be an entry first (an unknown one is said before any work)."""
    return [registry.entry_dir(name).name for name in names]


def _verify(names: Sequence[str], named: bool) -> int:
    """Verify each entry; 1 if one failed, or was ``named`` but has no weights file to verify."""
    failed = []
    for name in names:
        try:
            report = reference.verify(name)
        except WeightsNotStoredError:  # registered without its weights file: nothing wrong, nothing to check
            print(f"{name}: skipped: its weights file is not in the store (python -m relu_ratio.zoo fetch "
                  f"{name})")  # fmt: skip
            if named:
                failed.append(name)
            continue
        except ZooError as error:  # a changed output is listed and the rest run (the names are known)
            print(f"{name}: FAIL: {error}")
            failed.append(name)
            continue
        print(f"{name}: ok on {report['backend']}: {report['images']}, largest change of a recorded "
              f"probability {report['max_difference']:.1e} (allowed {report['tolerance']:.0e})")  # fmt: skip
    return 1 if failed else 0


def _cards(args: argparse.Namespace) -> int:
    from relu_ratio.zoo import card

    names = _known(args.names) or None
    if args.check or args.update:
        stale = card.update(names, check=args.check)
        if args.check and stale:
            listed = ", ".join(stale)
            print(f"model cards out of date or missing: {listed}; run: python -m relu_ratio.zoo cards "
                  "--update")  # fmt: skip
            return 1
        if args.update:
            print(f"wrote {len(stale)} card(s): {', '.join(stale)}" if stale else "every card was current")
        return 0
    for name in names or registry.stored_names():
        print(card.card_of(registry.info(name), registry.entry_dir(name)))
    return 0


if __name__ == "__main__":
    flags.exit_with(main)
