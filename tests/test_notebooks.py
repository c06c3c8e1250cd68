"""The notebooks: committed with the outputs of their current sources (``python notebooks/execute.py``), and
each runs top to bottom at tiny settings (RELU_RATIO_NOTEBOOK_TINY=1) on a scratch copy, never overwriting
the committed file."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from helpers import load_module
from nbclient.exceptions import CellExecutionError, CellTimeoutError

FOLDER = Path(__file__).parents[1] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))


def _execute_module():
    return load_module(FOLDER / "execute.py", "notebooks_execute")


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart", "02_relu_patterns", "03_reproduce_paper", "04_pattern_search"
    ]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_holds_the_outputs_of_its_current_source(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        f"{path.name} was not executed top to bottom in one kernel: python notebooks/execute.py {path.stem}"
    )
    recorded = notebook.metadata.get("relu_ratio", {})
    assert recorded.get("tiny") is False, f"{path.name} holds tiny-settings outputs"
    assert recorded.get("source_sha256") == _execute_module().source_digest(notebook), (
        f"{path.name}'s code changed since it was executed: python notebooks/execute.py {path.stem}"
    )
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} stored an error"
    assert any("text" in o or "data" in o for o in outputs)
    assert not any("execution" in cell.metadata for cell in notebook.cells), "timing metadata not stripped"


def test_committed_notebooks_stay_small():
    sizes = {p.name: p.stat().st_size for p in NOTEBOOKS}
    assert sum(sizes.values()) < 2_000_000, sizes


def test_tiny_run_refuses_to_overwrite_the_committed_notebooks(capsys):
    assert _execute_module().main(["--tiny"]) == 2
    assert "--tiny needs --out" in capsys.readouterr().err


def test_an_out_folder_that_cannot_take_the_notebooks_is_refused_before_any_runs(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    cases = ((tmp_path / "file" / "nb", "is not a folder"), (FOLDER, "--out must not be notebooks/"))
    for out, said in cases:
        assert _execute_module().main(["--tiny", "--out", str(out), "01_quickstart"]) == 2
        err = capsys.readouterr().err
        assert said in err.splitlines()[-1] and "[1/1]" not in err, err


def test_an_empty_out_is_refused_not_taken_as_in_place(monkeypatch, capsys):
    script = _execute_module()
    ran = []
    monkeypatch.setattr(script, "execute", lambda path, out, **kwargs: ran.append(out))  # never in place
    for argv in (["--out", out, "01_quickstart"] for out in ("", " ")):
        for given in (argv, ["--tiny", *argv]):
            assert script.main(given) == 2
            out, err = capsys.readouterr()
            said = f"error: --out must name a folder; received {argv[1]!r} (leave --out out to execute the " \
                "notebooks in place)\n"
            assert err == said and not out and not ran, (out, err, ran)


_CELL = nbformat.v4.new_code_cell("1 / 0")
_FAILED = {"ename": "ZeroDivisionError", "evalue": "division by zero",
           "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"]}


@pytest.mark.parametrize(
    ("error", "said"),
    [(CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", 1, _CELL),
      "error: 01_quickstart.ipynb stopped at a cell (each cell may take --timeout 1 s): A cell timed out"),
     (CellExecutionError.from_cell_and_msg(_CELL, _FAILED),
      "error: 01_quickstart.ipynb stopped at a cell: ZeroDivisionError: division by zero\n")],
)  # fmt: skip
def test_a_notebook_that_stops_at_a_cell_is_said_in_one_line_not_a_traceback(
    tmp_path, monkeypatch, capsys, error, said
):
    script = _execute_module()
    script.HERE = tmp_path  # its runs/ lock

    def stops(path, out, **kwargs):
        raise error

    monkeypatch.setattr(script, "execute", stops)
    assert script.main(["--tiny", "--out", str(tmp_path / "out"), "01_quickstart", "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(said) and err.count("\n") == 1, err  # one line: not the cell nor its traceback


def test_a_second_execution_leaves_the_first_ones_runs_alone(tmp_path, live_holder, capsys):
    from relu_ratio.folder_lock import FolderInUse

    pid, lock = live_holder
    (tmp_path / "runs" / "notebook-table2").mkdir(parents=True)
    (tmp_path / "runs" / ".lock").write_text(lock)
    with pytest.raises(FolderInUse, match=f"notebooks' runs folder .* is in use by process {pid}"):
        _execute_module().execute(NOTEBOOKS[0], tmp_path / "out.ipynb", tiny=True, workdir=tmp_path)
    assert (tmp_path / "runs" / "notebook-table2").is_dir() and not (tmp_path / "out.ipynb").exists()
    script = _execute_module()
    script.HERE = tmp_path  # main() holds notebooks/runs for the whole execution, before the first notebook
    assert script.main(["--tiny", "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert "[1/" not in out and err.startswith("error: the notebooks' runs folder") and err.count("\n") == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.slow
def test_notebook_runs_top_to_bottom(path, shared_data, decoded_data_home, tmp_path, monkeypatch):
    before = path.read_bytes()
    monkeypatch.setenv("RELU_RATIO_DATA", shared_data)
    monkeypatch.setenv("RELU_RATIO_HOME", decoded_data_home)
    scratch = _execute_module().execute(path, tmp_path / path.name, tiny=True, timeout=600, workdir=tmp_path)
    assert path.read_bytes() == before, "the tiny run wrote to the committed notebook"
    executed = nbformat.read(scratch, as_version=4)
    assert executed.metadata["relu_ratio"]["tiny"] is True
    assert all(cell.execution_count for cell in executed.cells if cell.cell_type == "code")
