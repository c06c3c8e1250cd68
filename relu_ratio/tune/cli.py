"""``python -m relu_ratio.tune``: flags generated from :class:`~relu_ratio.tune.SearchConfig`.

Example:
    >>> from relu_ratio.tune import cli
    >>> cli.main(["--family", "resnet", "--depth", "8", "--dataset", "../shared/data"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from relu_ratio import flags
from relu_ratio.tune import __doc__ as tune_doc
from relu_ratio.tune.search import (
    SEARCH_FILE,
    SearchConfig,
    project_name_of,
    search,
    trial_table,
)


def parser() -> flags.Parser:
    """CLI flags generated from :class:`SearchConfig` (:func:`relu_ratio.flags.add_arguments`)."""
    doc = tune_doc.split("\n\n")
    p = flags.Parser(
        prog="python -m relu_ratio.tune",
        description=doc[0] + " Prints the trial table (trials numbered from 1, as keras-tuner's screen "
        "numbers them) and the best relu_pattern; writes best.json into OUT/PROJECT_NAME, which names the "
        'best trial by its number in the table ("trial") and by keras-tuner\'s id ("trial_id", the name of '
        "its trial_<id> folder).",
        **flags.examples(
            "python -m relu_ratio.tune --family resnet --depth 20 --max-trials 12 --out runs/tune",
            after="Distributed: run the same command in every process with KERASTUNER_TUNER_ID=chief (one "
            "process, serves the oracle) or tuner0, tuner1... (workers), and KERASTUNER_ORACLE_IP / "
            "KERASTUNER_ORACLE_PORT set to where the chief listens. All processes must share --out.",
        ),
        allow_abbrev=False,
    )
    flags.add_arguments(p, SearchConfig)
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit 0 (searched), 2 (a mistake: settings, data, a project in use or of other settings; no trial
    completed; one line, no traceback) or 130 (Ctrl-C: one line saying what was kept and how to go on)."""
    args = parser().parse_args(argv)
    config = SearchConfig(**vars(args))
    start = time.time()
    try:
        result = search(config)
    except (ValueError, OSError, RuntimeError) as error:
        return flags.report_error(error)
    except KeyboardInterrupt:
        project = Path(config.directory) / project_name_of(config)
        return flags.report_interrupt(interrupted(project))
    wall = time.time() - start
    if result.role == "worker":
        ran = ", ".join(map(str, result.trials_run_here)) or "none"
        print(f"worker {result.tuner_id} ran trials {ran} (numbered as in the chief's table) in "
              f"{wall:.1f} s; the chief writes {result.project_dir}/best.json")  # fmt: skip
        return 0
    print(trial_table(result))
    space = result.space
    print(
        f"\nsearch space: {len(space['hyperparameters'])} choice(s) of {space['choices']}: "
        f"{space['configurations']:,} configurations, {space['feasible']:,} within the constraints"
    )
    print(
        f"best: val_accuracy {result.val_accuracy:.4f} | {result.family}{result.depth}: {result.convs} convs "
        f": {result.relus} ReLUs = {result.ratio:.2f} | {result.params:,} params"
    )
    print(f"relu_pattern = {json.dumps(result.relu_pattern)}")
    print(f"per-block masks = {json.dumps(result.masks)}")
    print(f"wrote {result.path} ({wall:.1f} s)")
    return 0


def interrupted(project: Path) -> str:
    """What a search stopped by Ctrl-C left in its project folder, and how to go on."""
    if (project / SEARCH_FILE).is_file():
        return (f"the search in {project} keeps the trials it finished; the same command resumes it "
                "(keras-tuner runs the interrupted trial again).")  # fmt: skip
    return "nothing was written."
