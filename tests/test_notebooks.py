"""Every notebook runs top to bottom (tiny settings: RELU_RATIO_NOTEBOOK_TINY=1) and has no stored outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart", "02_relu_patterns", "03_reproduce_paper", "04_pattern_search"
    ]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.slow
def test_notebook_runs_top_to_bottom(path, shared_data, decoded_data_home, tmp_path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), f"{path.name} has stored outputs"
    monkeypatch.setenv("RELU_RATIO_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("RELU_RATIO_DATA", shared_data)
    monkeypatch.setenv("RELU_RATIO_HOME", decoded_data_home)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
