"""Execute the notebooks top to bottom and store their outputs: the command that regenerates them.

    python notebooks/execute.py                       # all four, in place, real settings (CPU: about an hour)
    python notebooks/execute.py 01_quickstart         # one of them
    python notebooks/execute.py --tiny --out /tmp/nb  # CI's smoke run: tiny settings, a scratch copy

Each runs in a fresh kernel with ``notebooks/`` as its working folder (its ``runs/`` there is ignored by
git; the ``runs/notebook-*`` folders of a previous execution are removed first, so that it trains again;
one execution at a time holds ``runs/``, a second is refused naming the first).
The stored notebook keeps its outputs and execution counts, not the timing metadata (so that a diff shows
what changed), and records in its metadata the sha256 of its code cells' sources, which the tests compare
with the current sources: a notebook edited after it was executed fails them until executed again.
``--tiny`` sets ``RELU_RATIO_NOTEBOOK_TINY=1`` (small data, one epoch) and refuses to overwrite the
committed notebooks: it writes to ``--out``. Exit status 1 where a notebook stops at a cell (its error or
``--timeout`` said, the notebook not written), 2 for a mistake in the command.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
RUNS = "notebooks' runs folder"  # what the lock on runs/ is called in a message
KEY = "relu_ratio"  # the notebook metadata this script writes: {"source_sha256": ..., "tiny": ...}


def source_digest(notebook) -> str:
    """sha256 of the notebook's code cells' sources, in order (markdown edits do not need a new run)."""
    sources = "\n\x00\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    return hashlib.sha256(sources.encode()).hexdigest()


def execute(path: Path, out: Path, tiny: bool = False, timeout: int = 3600, workdir: Path = HERE) -> Path:
    """Run ``path`` in a fresh kernel in ``workdir`` (default ``notebooks/``); write the result to ``out``."""
    import nbformat
    from nbclient import NotebookClient

    from relu_ratio.folder_lock import locked_folder

    notebook = nbformat.read(path, as_version=4)
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["RELU_RATIO_NOTEBOOK_TINY"] = "1" if tiny else "0"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        with locked_folder(Path(workdir) / "runs", RUNS) as runs:
            for folder in runs.glob("notebook-*"):  # a previous execution's runs: train them again
                shutil.rmtree(folder)
            NotebookClient(
                notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                resources={"metadata": {"path": os.fspath(workdir)}},
            ).execute()  # fmt: skip
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    clean(notebook)
    notebook.metadata[KEY] = {"source_sha256": source_digest(notebook), "tiny": tiny}
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out)
    return out


def clean(notebook) -> None:
    """Drop the timing metadata and TensorFlow's start-up lines on stderr: a diff shows what changed."""
    from relu_ratio.startup import START_UP_LINES  # here: importing relu_ratio starts Keras (not for --help)

    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        kept = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                output.text = "".join(
                    line for line in output.text.splitlines(keepends=True) if not START_UP_LINES.search(line)
                )
                if not output.text.strip():
                    continue
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python notebooks/execute.py",
        description="Execute the notebooks and store their outputs (in place, unless --out).",
        epilog="Example:\n  python notebooks/execute.py 01_quickstart 02_relu_patterns\n"
        "  python notebooks/execute.py --tiny --out /tmp/notebooks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    names = ", ".join(p.stem for p in NOTEBOOKS)
    p.add_argument("names", nargs="*", help=f"notebooks to run (default: all of {names})")
    p.add_argument("--tiny", action="store_true",
                   help="tiny settings (RELU_RATIO_NOTEBOOK_TINY=1); needs --out")
    p.add_argument("--out", help="write the executed notebooks to this folder instead of in place")
    p.add_argument("--timeout", type=int, default=3600, help="seconds one cell may run (default: 3600)")
    return p


def _out_problem(out: str, tiny: bool) -> str | None:
    """Why ``--out`` cannot take the executed notebooks, or ``None``."""
    from relu_ratio.files import check_writable, names_nothing

    if names_nothing(out):  # "not given" is None, never the empty string
        return (f"--out must name a folder; received {out!r} (leave --out out to execute the notebooks in "
                "place)")
    folder = Path(out)
    if tiny and folder.resolve() == HERE:
        return "--tiny writes a scratch copy: --out must not be notebooks/ (the committed notebooks)"
    try:
        check_writable(folder, "--out folder")
    except ValueError as error:
        return str(error)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    chosen = [p for p in NOTEBOOKS if not args.names or p.stem in args.names or p.name in args.names]
    unknown = set(args.names) - {p.stem for p in chosen} - {p.name for p in chosen}
    if unknown:
        known = ", ".join(p.stem for p in NOTEBOOKS)
        print(f"error: no notebook {', '.join(sorted(unknown))}; choose from {known}", file=sys.stderr)
        return 2
    if args.tiny and args.out is None:
        print("error: --tiny needs --out: the committed notebooks keep the outputs of the real settings",
              file=sys.stderr)  # fmt: skip
        return 2
    problem = (args.timeout < 1 and f"--timeout must be >= 1 (seconds); received {args.timeout}") or (
        args.out is not None and _out_problem(args.out, args.tiny))  # the check without imports first
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from relu_ratio.folder_lock import FolderInUse, locked_folder

    start = time.monotonic()
    try:
        with locked_folder(HERE / "runs", RUNS):  # for the whole execution, not only each notebook
            for number, path in enumerate(chosen, start=1):
                target = path if args.out is None else Path(args.out) / path.name
                began = time.monotonic()
                print(f"[{number}/{len(chosen)}] {path.name} ...", flush=True)
                execute(path, target, tiny=args.tiny, timeout=args.timeout)
                took = time.monotonic() - began
                print(f"[{number}/{len(chosen)}] {path.name}: {took / 60:.1f} min -> {target}", flush=True)
    except FolderInUse as error:  # another execution trains in notebooks/runs
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:  # the cell's own, not ours
        if isinstance(error, CellExecutionError):  # its str: the cell, its output and the coloured traceback
            said = f"{error.ename}: {error.evalue}"
        else:  # a timeout (its str goes on with the cell's source) or a dead kernel
            said = str(error).splitlines()[0]
        timed_out = isinstance(error, CellTimeoutError)
        limit = f" (each cell may take --timeout {args.timeout} s)" if timed_out else ""
        print(f"error: {path.name} stopped at a cell{limit}: {said}", file=sys.stderr)
        return 1
    print(f"done in {(time.monotonic() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
