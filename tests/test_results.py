"""The results page: entries matched to the paper's tables, differences, verdicts; the page kept current."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from relu_ratio.experiments import EXPERIMENTS, Published, results
from relu_ratio.experiments.results import Difference

PAGE = Path(__file__).parent.parent / "docs" / "RESULTS.md"


def test_the_committed_results_page_and_its_plots_are_current():
    assert results.is_current(PAGE), "run: python -m relu_ratio.experiments results --update docs/RESULTS.md"


def test_a_results_page_that_cannot_be_written_leaves_no_folder_behind(tmp_path, monkeypatch):
    """Its new folder was made and left (empty) when the write failed."""
    from relu_ratio import files

    def disk_full(target, content, durable=False):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(target))

    monkeypatch.setattr(files, "write_atomic", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        results.write(tmp_path / "new" / "RESULTS.md")
    assert not (tmp_path / "new").exists()


def test_results_update_never_overwrites_a_file_that_is_not_a_results_page(tmp_path, capsys):
    from relu_ratio.experiments import __main__ as cli

    notes = tmp_path / "notes.md"
    notes.write_text("# notes\nimportant\n")
    assert cli.main(["results", "--update", str(notes)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a file that is not a results page" in err
    assert err.count("\n") == 1
    assert notes.read_text() == "# notes\nimportant\n" and not (tmp_path / "results").exists()
    with pytest.raises(ValueError, match="is a folder"):
        results.write(tmp_path)
    # a file on the page's path, a page not there or a folder: named (not a bare errno, not "out of date")
    assert cli.main(["results", "--update", str(notes / "R.md")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write to the results page's folder {notes}: {notes} is not a folder" in err
    assert cli.main(["results", "--check", str(tmp_path / "nosuch.md")]) == 2
    assert "nosuch.md' is not there; give the results page" in capsys.readouterr().err
    assert cli.main(["results", "--check", str(tmp_path)]) == 2
    assert "' is a folder; give the results page" in capsys.readouterr().err
    assert cli.main(["results", "--check", str(notes)]) == 2  # not "out of date", then --update refused
    assert "is a file that is not a results page" in capsys.readouterr().err
    notes.write_bytes(b"# Results\xff")
    assert cli.main(["results", "--check", str(notes)]) == 2
    assert "not a results page" in capsys.readouterr().err
    notes.write_text("")  # an empty file is nobody's: the page is written into it
    assert cli.main(["results", "--update", str(notes)]) == 0 and results.is_current(notes)


def test_results_update_names_a_file_where_its_plots_go_before_it_writes_the_page(tmp_path, capsys):
    """A file named ``results`` beside the page was a bare "[Errno 17] File exists", a folder in the place of
    a plot "[Errno 21] Is a directory", each after the page was written."""
    from relu_ratio.experiments import __main__ as cli

    page = tmp_path / "RESULTS.md"
    (tmp_path / "results").write_text("")  # where the plots' folder goes
    assert cli.main(["results", "--update", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write to the results page's plots folder {tmp_path / 'results'}: ")
    assert err.count("\n") == 1, err
    (tmp_path / "results").unlink()
    (tmp_path / "results" / "accuracy_by_pattern.png").mkdir(parents=True)
    assert cli.main(["results", "--update", str(page)]) == 2
    err = capsys.readouterr().err
    plot = tmp_path / "results" / "accuracy_by_pattern.png"
    assert err == f"error: cannot write the results page's plot {plot}: it is a folder, not a file. " \
                  "Move it away.\n", err  # fmt: skip
    assert not page.exists()  # refused before the page is written


def test_the_readmes_claims_are_one_verdict_per_trained_variant_of_the_page():
    lines = results.claims().splitlines()
    page = results.page()
    assert lines and all(line.startswith("- ") for line in lines)
    for line in lines:  # each bullet is the page's verdict for that variant
        where, verdict = line[2:].split(": ", 1)
        assert f": {verdict}" in page, line
        assert where.split(", ")[0] in page
    assert any(line.startswith("- Table II, 2:1") for line in lines)  # the ResNet-20 pairs are registered


@pytest.mark.parametrize(
    ("experiment", "builder_name", "label"),
    [
        ("table2", "resnet20_21", "2:1 (first ReLU removed)"),  # a depth the paper does not train
        ("figs7_8", "preact164_32", "Type 1 (3:2, first ReLU removed)"),
        ("figs7_8", "preact164_type1", "Type 1 (3:2, first ReLU removed)"),  # the same mask, another name
        ("table3", "dfnmr110_type1", "Type 1 (4:3, ReLU after one sum removed)"),
        ("table1", "plain84_11", "paired (1:1)"),
        ("table2", "resnet20_erase_last", None),  # not a variant of Table II
    ],
)
def test_an_entry_is_matched_to_its_variant_by_its_relu_mask(experiment, builder_name, label):
    assert results.variant_label(EXPERIMENTS[experiment], builder_name) == label


def _measured(label: str, paired: bool, top1: float, sd: float | None, seeds: int) -> results.Measured:
    return results.Measured(f"x_{label}", 20, label, paired, 100, top1, sd, seeds, ())


def test_a_papers_number_is_given_once_on_the_row_of_its_network_and_pairs_stay_together():
    """Two trainings of the flagship pair (30 and 100 epochs): each pair together, He et al.'s ResNet-164
    beside our first paired row only, a network we did not train on a row of its own after ours."""
    spec = EXPERIMENTS["figs7_8"]
    paired, type1 = spec.variants[0].label, "Type 1 (3:2, first ReLU removed)"
    rows = [results.Measured(f"preact164_{token}{tag}", 164, label, token == "11", epochs, 90.0, None, 1, ())
            for epochs, tag in ((30, ".e30"), (100, "")) for token, label in (("11", paired), ("32", type1))]
    table = [line for line in results._section(spec, rows) if line.startswith("| depth 164")]
    assert [line.split(" | ")[2].split("`")[1] for line in table] == [
        "preact164_11.e30", "preact164_32.e30", "preact164_11", "preact164_32", ]
    assert [line.count("94.54 (CIFAR-10") for line in table] == [1, 0, 0, 0]
    spec_110 = [line for line in results._section(spec, rows) if line.startswith("| depth 110")]
    assert spec_110 == []  # no published number at depth 110, none trained


def test_differences_carry_a_standard_error_only_with_seeds_on_both_sides():
    rows = [_measured("paired", True, 88.0, 0.3, 3), _measured("2:1", False, 88.5, 0.4, 3)]
    (difference,) = results.differences(rows)
    assert difference.ours == pytest.approx(0.5)
    assert difference.error == pytest.approx(((0.3**2 + 0.4**2) / 3) ** 0.5)
    assert difference.text() == "+0.50 ± 0.29 s.e."  # a standard error, not the rows' sd over seeds
    (single,) = results.differences([rows[0], _measured("2:1", False, 88.5, None, 1)])
    assert single.error is None and single.text() == "+0.50 (one seed)"


def _paper(dataset: str, paired: float, other: float) -> list[tuple[Published, Published]]:
    return [(Published("resnet62_11", dataset, paired, "Z"), Published("resnet62_21", dataset, other, "Z"))]


TEN, HUNDRED = _paper("CIFAR-10", 93.59, 93.97), _paper("CIFAR-100", 71.43, 72.19)


@pytest.mark.parametrize(
    ("ours", "paper", "starts"),
    [
        (Difference("2:1", 62, "g", 0.48, 0.16), TEN, "reproduced (direction and size): ours +0.48 ± 0.16"),
        (Difference("2:1", 20, "g", 0.48, 0.16), TEN, "reproduced (direction and size, at depth 20 for the"),
        (Difference("2:1", 62, "g", 0.36, 0.19), TEN, "inconclusive (within two standard errors of zero): "),
        (Difference("2:1", 20, "g", -0.1, 0.19), TEN, "inconclusive (within two standard errors of zero, at"),
        (Difference("2:1", 20, "g", 1.50, 0.19), TEN, "direction only, at depth 20 for the paper's 62"),
        (Difference("2:1", 62, "g", -0.3, 0.1), TEN, "not reproduced: ours -0.30"),
        (Difference("2:1", 20, "g", 0.36, None), TEN, "direction only"),
        (Difference("2:1", 20, "g", -0.3, 0.1), TEN, "not reproduced, at depth 20 for the paper's 62"),
        (Difference("2:1", 20, "g", 0.5, 0.1), HUNDRED, "not testable here (CIFAR-100"),
        (None, TEN, "pending"),
        (Difference("2:1", 20, "g", 0.5, None), [], "not testable here: the paper gives no number"),
    ],
)
def test_verdicts(ours, paper, starts):
    assert results.verdict(ours, paper).startswith(starts)


def test_a_claim_is_judged_on_ours_at_the_papers_depth_where_we_trained_it():
    papers = [(Published("plain38_11", "CIFAR-100", 70.0, "Z"),
               Published("plain38_21", "CIFAR-100", 70.21, "Z"))]
    diffs = [Difference("2:1", 38, "depth 38", 0.27, None), Difference("2:1", 84, "depth 84", 39.78, None)]
    assert results._best(diffs, "2:1", papers).depth == 38
    assert results._best(diffs, "2:1", []).depth == 84  # no published depth: the deepest
    seeded = Difference("2:1", 84, "depth 84", 1.0, 0.1)
    assert results._best([*diffs, seeded], "2:1", papers) is seeded  # seeds on both sides first


def test_pooled_seeds_are_named_with_their_precision():
    """``resnet20_11``'s entry is its float32 seed 0; the row's mean is of its bfloat16 seeds: say which."""
    seeds = {"resnet20_11": ("mixed_bfloat16", [88.06, 88.36, 88.09]), "resnet20_21": ("float32", [88.7])}
    rows = {row.name: row for row in results.measured(EXPERIMENTS["table2"], seeds)}
    pooled, single = rows["resnet20_11"], rows["resnet20_21"]
    assert (pooled.seeds, pooled.precision) == (3, "mixed_bfloat16")
    assert "| 100 | 3 (mixed_bfloat16) | 88.17 ± 0.17" in results._ours_cells(pooled)
    assert single.precision is None and "| 100 | 1 | 88.70" in results._ours_cells(single)  # the entry's own
