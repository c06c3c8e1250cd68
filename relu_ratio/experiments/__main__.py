"""``python -m relu_ratio.experiments list | plan | run | collect | results``: see
:mod:`relu_ratio.experiments` and :mod:`relu_ratio.experiments.results`."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys

from relu_ratio import flags, train
from relu_ratio.experiments import report, results, runner, specs
from relu_ratio.validators import repeated

EXAMPLES = {
    "list": "python -m relu_ratio.experiments list",
    "plan": "python -m relu_ratio.experiments plan table2 --budget fast",
    "run": "python -m relu_ratio.experiments run table2 --budget tiny --only 'resnet62_*'",
    "collect": "python -m relu_ratio.experiments collect runs/experiments/table2-tiny",
    "results": "python -m relu_ratio.experiments results --update docs/RESULTS.md",
}


def parser() -> flags.Parser:
    p = flags.Parser(
        prog="python -m relu_ratio.experiments",
        allow_abbrev=False,  # worker commands are rebuilt by removing exact flags
        description="Reproduce the paper's experiments: train every run, then write results.csv, "
        "results.md (ours beside the paper's numbers) and accuracy.png into the output folder.",
        **flags.examples(*EXAMPLES.values()),
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the experiments and budgets", **flags.examples(EXAMPLES["list"]))
    for name, text in (
        ("plan", "check the settings and data as run does, then print the runs' training commands"),
        ("run", "train, then collect"),
    ):
        q = sub.add_parser(name, help=text, allow_abbrev=False, **flags.examples(EXAMPLES[name]))
        q.add_argument("experiment", help=", ".join(specs.EXPERIMENTS))
        q.add_argument("--budget", default="tiny", help=f"{', '.join(specs.BUDGETS)} (default: tiny)")
        q.add_argument("--dataset", type=flags.path,
                       help="dataset source (default: $RELU_RATIO_DATA or ../shared/data)")  # fmt: skip
        q.add_argument("--out", type=flags.path,
                       help="output folder (default: runs/experiments/<experiment>-<budget>)")  # fmt: skip
        q.add_argument("--only", help="fnmatch pattern on model names, e.g. 'resnet62_*'")
        q.add_argument("--epochs", type=int, help="override the budget's epochs")
        q.add_argument("--train-subset", type=int, help="override: train on this many images")
        q.add_argument("--test-subset", type=int, help="override: test on this many images")
        q.add_argument("--batch-size", type=int, help="override the recipe's batch size")
        q.add_argument("--recipe", help="override the budget's recipe (paper, fast)")
        q.add_argument("--seeds", type=int, nargs="+", help="override the budget's seeds")
        if name == "run":
            q.add_argument("--shard", default="0/1", help="this worker's share 'I/N' (0-based; default 0/1)")
            q.add_argument("--workers", type=int, default=1, help="start this many local worker processes")
            q.add_argument("--gpus", help="comma-separated GPU ids, one worker each (sets --workers)")
    q = sub.add_parser("collect", help="merge the runs in a folder into results.csv/.md and accuracy.png",
                       **flags.examples(EXAMPLES["collect"]))
    q.add_argument("out", type=flags.path, help="the experiment's output folder")
    q = sub.add_parser("results", help="the results page: the paper's tables answered by the zoo's entries "
                       "(e.g. --update docs/RESULTS.md)", **flags.examples(EXAMPLES["results"]))  # fmt: skip
    group = q.add_mutually_exclusive_group()
    group.add_argument("--update", metavar="FILE", type=flags.path,
                       help="write the page to FILE, its plots to results/")  # fmt: skip
    group.add_argument("--check", metavar="FILE", type=flags.path,
                       help="exit 1 if FILE (or its plots) is out of date")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    root = None  # the experiment's folder, once `run` knows it
    try:
        if args.command == "list":
            return _list()
        if args.command == "collect":
            return _print_report(report.collect(args.out))
        if args.command == "results":
            return _results(args.update, args.check)
        specs.experiment(args.experiment)  # named as the command line can give them (none of one's own)
        budget = runner.resolve_budget(
            args.budget, epochs=args.epochs, train_subset=args.train_subset, test_subset=args.test_subset,
            batch_size=args.batch_size, recipe=args.recipe, seeds=args.seeds,
        )  # fmt: skip
        runs = runner.plan(args.experiment, budget, dataset=args.dataset, out=args.out, only=args.only)
        for item in runs:
            item.config.resolved()  # every config is checked before anything trains
        if args.command == "plan":
            runner.check_where(runs)  # and where they read and write, as `run` checks them when it prepares
            if not runner.check_data(runs, download=False):  # the subsets against the data, as `run` does
                print(f"note: {runs[0].config.dataset} is not downloaded yet, so the subsets were not "
                      "checked against it (run checks them once it has downloaded it)",
                      file=sys.stderr)  # fmt: skip
            for item in runs:
                print(train.command_for(item.config.resolved()))
            again = [*argv]
            again[argv.index("plan")] = "run"
            print(f"note: once these have run (anywhere), python -m relu_ratio.experiments "
                  f"{shlex.join(again)} takes them as finished and writes the report into "
                  f"{runs[0].experiment_folder}", file=sys.stderr)  # fmt: skip
            return 0
        gpus = _gpu_ids(args.gpus) if args.gpus is not None else None
        workers = len(gpus) if gpus else args.workers
        if workers < 1:
            raise ValueError(f"--workers must be >= 1; received {workers}.")
        shard = runner.parse_shard(args.shard)
        root = runs[0].experiment_folder
        if workers > 1 or gpus:
            if shard != (0, 1):
                raise ValueError("--workers/--gpus start their own shards; do not combine them with --shard.")
            with _no_gpu():  # once here, not a failure in every worker
                runner.prepare(runs, args.experiment, budget)
            status = runner.spawn_workers(_without(argv, "--workers", "--gpus"), workers, gpus)
            _print_report(report.collect(root))
            return status
        failures = runner.run(runs, experiment_name=args.experiment, budget=budget, shard=shard)
        for item, message in failures:
            print(f"failed: {item.run_id}: {message} (see {item.out / 'failed.json'})", file=sys.stderr)
        if shard == (0, 1):
            _print_report(report.collect(root))
        elif os.environ.get(runner.SPAWNED):  # started by `run --workers/--gpus`, which collects
            print(f"shard {args.shard} done")
        else:  # the other shards may still be running: merging is the job of whoever started them
            print(f"shard {args.shard} done; once all are: python -m relu_ratio.experiments collect {root}")
        return 1 if failures else 0
    except (ValueError, OSError) as error:  # bad settings, or a folder that cannot be written
        return flags.report_error(error)
    except KeyboardInterrupt:
        if root is None:
            raise
        return flags.report_interrupt(f"the runs finished in {root} are kept; the same command trains the "
                                      "others, a cut-off run from its last backup.")  # fmt: skip


@contextlib.contextmanager
def _no_gpu():
    """No GPU for this process while inside: TensorFlow, started here to read a tensorflow-datasets source,
    would otherwise take the memory of every GPU the workers need (it keeps that choice once started)."""
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        yield
    finally:  # the workers inherit what was set before
        if saved is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def _gpu_ids(text: str) -> list[str]:
    """``--gpus 0,1``: one worker per id (an index, or a ``GPU-``/``MIG-`` UUID as ``CUDA_VISIBLE_DEVICES``
    takes them), each GPU once."""
    ids = [gpu.strip() for gpu in text.split(",")]
    index = {gpu: str(int(gpu)) for gpu in ids if gpu.isascii() and gpu.isdigit()}  # "00" is GPU 0
    bad = [gpu for gpu in ids if gpu not in index and not gpu.startswith(("GPU-", "MIG-"))]
    twice = repeated(index.get(gpu, gpu) for gpu in ids)
    if bad or twice:
        problem = f"{bad[0]!r} is not a GPU id" if bad else f"{twice[0]} twice (two workers on one GPU)"
        raise ValueError(f"--gpus takes comma-separated GPU ids, each once, e.g. '0,1'; received {text!r}: "
                         f"{problem}.")  # fmt: skip
    return ids


def _list() -> int:
    for spec in specs.EXPERIMENTS.values():
        print(f"{spec.name:11s} {spec.title} ({len(spec.variants)} models)")
    for budget in specs.BUDGETS.values():
        print(f"budget {budget.name:5s} {budget.describe()}")
    return 0


def _results(update: str | None, check: str | None) -> int:
    if check:
        if not os.path.isfile(check):
            what = "a folder" if os.path.isdir(check) else "not there"
            raise ValueError(f"--check {check!r} is {what}; give the results page, e.g. docs/RESULTS.md.")
        if results.is_current(check):
            return 0
        print(f"{check} is out of date; run: python -m relu_ratio.experiments results --update {check}")
        return 1
    if update:
        print("wrote: " + ", ".join(map(str, results.write(update))))
    else:
        print(results.page(), end="")
    return 0


def _print_report(result: report.Report) -> int:
    """Print the markdown table, the run counts and the files written; returns 0 (an exit status)."""
    print(result.markdown)
    written = [result.csv_path, result.markdown_path] + ([result.figure_path] if result.figure_path else [])
    print("runs: " + ", ".join(f"{n} {s}" for s, n in result.counts().items()))
    print("wrote: " + ", ".join(map(str, written)))
    return 0


def _without(argv: list[str], *flags: str) -> list[str]:
    """``argv`` without ``flags`` and their values (``--flag value`` or ``--flag=value``)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in flags)):
            kept.append(arg)
    return kept


if __name__ == "__main__":
    flags.exit_with(main)
