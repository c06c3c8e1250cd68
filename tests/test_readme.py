"""The README's code runs, its links and the docs' links lead somewhere, and its picture is drawn by code.

Every ```python block of README.md is executed, in order and in one namespace, as a reader would paste
them: in a fresh folder holding ``my_images/`` (the "your folder" of the fine-tuning example, made from the
images shipped in the package). ```bash blocks are run by CI itself (after a ``<!-- ci:... -->`` marker) or
are marked ``<!-- readme:not-run: why -->`` (the network, hours of training); an unmarked one fails here.

So that the test takes about a minute on a CPU rather than several, the blocks run against the test
fixtures' zoo with ``preact164_32`` replaced by the 3-epoch ``resnet8_21`` and ``epochs=10`` by
``epochs=1``; ``RELU_RATIO_README_VERBATIM=1`` runs them exactly as written, on the shipped zoo.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURE_ZOO
from helpers import load_module
from PIL import Image

from relu_ratio import data

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUN_BY_CI = ("<!-- ci:install -->", "<!-- ci:test -->")
NOT_RUN = "<!-- readme:not-run:"
FAST = {'"preact164_32"': '"resnet8_21"', "epochs=10": "epochs=1"}


def blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, code, the line before the fence) of every fenced block."""
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append((match.group(1), match.group(2), before.strip()))
    return found


def test_every_readme_code_block_is_python_run_here_or_marked():
    found = blocks(README.read_text())
    assert sum(language == "python" for language, _, _ in found) >= 4  # build, load, fine-tune, export
    for language, code, before in found:
        if language == "python":
            compile(code, "README.md", "exec")
        elif language == "bash":
            assert before in RUN_BY_CI or before.startswith(NOT_RUN), f"unmarked bash block: {code}"
        else:
            assert language == "", f"a ```{language} block is neither run nor marked: {code}"


def test_readme_docs_and_model_card_links_lead_to_files_that_exist():
    cards = sorted(ROOT.glob("zoo/*/README.md"))  # the zoo table links to every entry's model card
    assert cards, "no model cards in zoo/; run: python -m relu_ratio.zoo cards --update"
    for page in [README, *DOCS.glob("*.md"), *cards]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            path = target.split("#", 1)[0]
            if not path or re.match(r"[a-z]+://", path):
                continue
            resolved = (page.parent / path).resolve()
            where = os.path.relpath(page, ROOT)
            assert resolved.exists(), f"{where} links to {target}, which does not exist"


def _figures():
    return load_module(DOCS / "make_figures.py", "make_figures")


def test_the_readme_picture_is_drawn_from_the_patterns(tmp_path):
    figures = _figures()
    assert [kind for kind, _ in figures.block_layers("1:1")].count("erased") == 0
    assert [kind for kind, _ in figures.block_layers("3:2")][:3] == ["bn", "erased", "conv"]  # Type 1
    assert figures.draw(tmp_path / "blocks.png").stat().st_size > 10_000
    assert "](docs/blocks.png)" in README.read_text() and (DOCS / "blocks.png").is_file()


def test_make_figures_takes_help_prints_the_file_it_wrote_and_names_a_bad_path(tmp_path, monkeypatch, capsys):
    figures = _figures()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--help"])  # was drawn into ./--help.png
    assert exit_.value.code == 0 and "usage: python docs/make_figures.py" in capsys.readouterr().out
    assert figures.main(["x"]) == 0 and capsys.readouterr().out == "x.png\n"  # matplotlib adds .png
    assert (tmp_path / "x.png").stat().st_size > 10_000 and list(tmp_path.iterdir()) == [tmp_path / "x.png"]
    cases = {"": "path is empty or blank ('')", " ": "path is empty or blank (' ')",
             str(tmp_path): f"{tmp_path} is a folder; give a file name such as ",
             "x.v1": "cannot write a figure as '.v1' (x.v1); use one of .",
             "missing/a.png": "cannot write the figure to missing/a.png: No such file or"}  # fmt: skip
    for path, said in cases.items():
        with pytest.raises(SystemExit) as exit_:
            figures.main([path])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and said in err and err.count("error:") == 1, err
        assert path != "x.v1" or ".png" in err  # the formats matplotlib writes, whatever its version
        assert err.splitlines()[-1].startswith("python docs/make_figures.py: error:"), err
    assert list(tmp_path.iterdir()) == [tmp_path / "x.png"]
    import matplotlib.figure

    def disk_full_part_way(figure, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    before = (tmp_path / "x.png").read_bytes()
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full_part_way)
    with pytest.raises(SystemExit) as exit_:
        figures.main(["x"])
    assert exit_.value.code == 2 and "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "x.png"] and (tmp_path / "x.png").read_bytes() == before
    started = subprocess.run(  # a bad path is named before Keras starts (this process has it started already)
        [sys.executable, "-c", "import sys; sys.path.insert(0, 'docs'); import make_figures as f\n"
         "try: f.target(' ')\nexcept ValueError: print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"],
        cwd=DOCS.parent, capture_output=True, text=True, check=True)  # fmt: skip
    assert started.stdout == "[]\n", started


def _my_images(folder: Path) -> None:
    """A small 'folder of your images': three classes of the shipped sample, as PNG files."""
    sample = data.sample()
    names = sample.info.class_names
    for i, (image, label) in enumerate(zip(sample.images, sample.labels)):
        if names[label] in ("airplane", "automobile", "ship"):
            target = folder / ("train" if i % 2 == 0 else "test") / names[label]
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target / f"{i}.png")


@pytest.mark.slow
def test_the_readme_python_blocks_run(tmp_path):
    verbatim = os.environ.get("RELU_RATIO_README_VERBATIM") == "1"
    code = "\n\n".join(code for language, code, _ in blocks(README.read_text()) if language == "python")
    if not verbatim:
        for old, new in FAST.items():
            assert old in code, f"the README no longer says {old}; update FAST"
            code = code.replace(old, new)
    _my_images(tmp_path / "my_images")
    (tmp_path / "readme_blocks.py").write_text(code)
    env = {**os.environ, "RELU_RATIO_HOME": os.fspath(tmp_path / "home"), "PYTHONPATH": os.fspath(ROOT)}
    if verbatim:
        env.pop("RELU_RATIO_ZOO", None)
    else:
        env["RELU_RATIO_ZOO"] = FIXTURE_ZOO
    done = subprocess.run(
        [sys.executable, "readme_blocks.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "my_model.keras").is_file()
    assert (tmp_path / "my_model_saved" / "saved_model.pb").is_file()
    assert "convs" in done.stdout and "ReLUs" in done.stdout  # describe() printed
