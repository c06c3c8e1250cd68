"""The measured speeds per CPU class (relu_ratio.train.speeds) and the lines a run prints at its start."""

from __future__ import annotations

import pytest

from relu_ratio.train import TrainConfig, fit, speeds

FLOAT32 = {"tensorflow": "float32", "jax": "float32", "torch": "float32"}


def entry(backend: str, images_per_s: float, model: str = "resnet20_21", cpu_class: str = "AVX2",
          precision: str = "float32") -> dict:  # fmt: skip
    return {"cpu_class": cpu_class, "model": model, "batch": 128, "precision": precision, "backend": backend,
            "train_images_per_s": images_per_s}  # fmt: skip


def test_each_entry_is_the_fastest_run_of_what_the_cli_trains_on_a_cpu():
    row = {"framework": "keras", "model": "resnet20_21", "batch": 128, "precision": "float32",
           "backend": "tensorflow", "batch_norm": "fused", "device": "cpu: 2 cores", "cpu_class": "AVX2",
           "date": "2026-12-02"}  # fmt: skip
    rows = [
        {**row, "train_images_per_s": 70.0},
        {**row, "train_images_per_s": 79.0, "note": "quiet", "date": "2026-12-03"},
        {**row, "train_images_per_s": 999.0, "batch_norm": "stock"},  # not what the CLI trains under TF
        {**row, "train_images_per_s": 999.0, "augment_on": "device"},  # a GPU's path
        {**row, "train_images_per_s": 999.0, "device": "gpu: NVIDIA H100 x1"},
        {**row, "train_images_per_s": 999.0, "framework": "torch"},  # the PyTorch reference, not a backend
        {**row, "inference_images_per_s": 999.0, "benchmark": "fusion"},  # no training figure
        {**row, "train_images_per_s": 229.0, "backend": "torch", "batch_norm": "stock"},
        {**row, "train_images_per_s": 250.0, "backend": "torch", "conv": "copy-free"},
        {**row, "train_images_per_s": 240.0, "backend": "torch", "conv": "copy-free"},  # its layers' runs: 2
        {**row, "train_images_per_s": 999.0, "backend": "torch", "conv": "stock"},  # --stock-layers
        {**row, "train_images_per_s": 600.0, "cpu_class": None},  # recorded before the class was
    ]
    entries = speeds.fastest_runs(rows)
    assert [(e["cpu_class"], e["backend"], e["train_images_per_s"], e["runs"]) for e in entries] == [
        ("AVX2", "tensorflow", 79.0, 2), ("AVX2", "torch", 250.0, 2), (None, "tensorflow", 600.0, 1),
    ]  # fmt: skip
    assert (entries[0]["date"], entries[0]["note"]) == ("2026-12-03", "quiet")  # the fastest row's


def test_the_hint_names_the_faster_backend_its_measured_ratio_and_the_command():
    table = [entry("tensorflow", 76.0), entry("torch", 229.0), entry("jax", 80.0)]
    line = speeds.hint(table, "AVX2", "resnet20_21", "tensorflow", FLOAT32, "python -m relu_ratio.train")
    assert line == ("hint: Keras on torch trained resnet20_21 3.01x as fast as on tensorflow on an AVX2 CPU "
                    "(float32; docs/BENCHMARKS.md): KERAS_BACKEND=torch python -m relu_ratio.train")
    assert speeds.hint(table, "AVX2", "resnet20_21", "torch", FLOAT32, "c") is None  # already the fastest
    assert speeds.hint(table, "AVX2", "resnet20_21", "jax", FLOAT32, "c").startswith(
        "hint: Keras on torch trained resnet20_21 2.86x as fast as on jax"
    )


@pytest.mark.parametrize("cpu_class", ["AVX-512", "AMX", "other", "arm"])
def test_no_hint_without_measurements_for_the_class(cpu_class):
    table = [entry("tensorflow", 76.0), entry("torch", 229.0)]
    assert speeds.hint(table, cpu_class, "resnet20_21", "tensorflow", FLOAT32, "c") is None
    other = [entry("tensorflow", 76.0, cpu_class=cpu_class), entry("torch", 229.0, cpu_class=cpu_class)]
    shown = speeds.hint(other, cpu_class, "resnet20_21", "tensorflow", FLOAT32, "c") is not None
    assert shown == (cpu_class in ("AVX-512", "AMX"))  # "other" and "arm" lump unlike CPUs together


def test_no_hint_below_the_noise_or_without_the_current_backend_measured():
    near = [entry("tensorflow", 100.0), entry("torch", 129.0)]
    assert speeds.hint(near, "AVX2", "resnet20_21", "tensorflow", FLOAT32, "c") is None
    assert speeds.hint([entry("torch", 229.0)], "AVX2", "resnet20_21", "tensorflow", FLOAT32, "c") is None
    assert speeds.hint([], "AVX2", "resnet20_21", "tensorflow", FLOAT32, "c") is None


def test_each_backend_is_compared_in_the_precision_it_would_train_in():
    bf16 = [entry("tensorflow", 100.0, cpu_class="AMX", precision=p) for p in ("mixed_bfloat16", "float32")]
    table = [*bf16, entry("torch", 90.0, cpu_class="AMX"), entry("torch", 300.0, cpu_class="AMX",
                                                                 precision="mixed_bfloat16")]  # fmt: skip
    mixed = {"tensorflow": "mixed_bfloat16", "jax": "float32", "torch": "float32"}  # per backend
    assert speeds.hint(table, "AMX", "resnet20_21", "tensorflow", mixed, "c") is None  # 90 in float32 vs 100
    both = {**mixed, "torch": "mixed_bfloat16"}  # --mixed-precision mixed_bfloat16
    assert "(mixed_bfloat16;" in speeds.hint(table, "AMX", "resnet20_21", "tensorflow", both, "c")
    table.append(entry("torch", 200.0, cpu_class="AMX"))
    assert "(float32 against mixed_bfloat16;" in speeds.hint(table, "AMX", "resnet20_21", "tensorflow",
                                                             mixed, "c")  # fmt: skip


def test_the_models_own_ratio_is_used_if_measured_else_the_least_favourable_one():
    table = [entry("tensorflow", 100.0), entry("torch", 150.0),
             entry("tensorflow", 10.0, "preact164_32"), entry("torch", 40.0, "preact164_32")]  # fmt: skip
    assert speeds.faster_backend(table, "AVX2", "resnet20_21", "tensorflow", FLOAT32) == (
        "torch", "resnet20_21", 1.5
    )
    assert speeds.faster_backend(table, "AVX2", "preact56_32", "tensorflow", FLOAT32) == (
        "torch", "resnet20_21", 1.5
    )


def test_a_run_prints_its_device_class_and_precision_and_the_hint_only_when_new(monkeypatch):
    backend = fit.keras.backend.backend()
    other = "torch" if backend != "torch" else "tensorflow"
    monkeypatch.setattr(fit, "device", lambda: "cpu: 2 cores")
    monkeypatch.setattr(fit, "cpu_class", lambda: "AVX2")
    monkeypatch.setattr(fit, "cpu_has_bf16_instructions", lambda: False)
    config = TrainConfig(model="resnet20_21", recipe="fast", epochs=1).resolved()
    table = [entry(backend, 76.0), entry(other, 229.0)]
    first, hint = fit.start_lines(config, "float32", resumed=False, table=table)
    assert first == f"relu_ratio.train: cpu: 2 cores (AVX2, no bfloat16), Keras on {backend}: float32"
    assert hint.startswith(f"relu_ratio.train: hint: Keras on {other} trained resnet20_21 3.01x as fast")
    assert hint.endswith(f"KERAS_BACKEND={other} {fit.command_for(config)}")
    assert fit.start_lines(config, "float32", resumed=True, table=table) == [first]
    assert fit.start_lines(config, "float32", resumed=False, table=table[:1]) == [first]
    monkeypatch.setattr(fit, "device", lambda: "gpu: NVIDIA H100 x1")
    assert fit.start_lines(config, "mixed_bfloat16", resumed=False, table=table) == [
        f"relu_ratio.train: gpu: NVIDIA H100 x1, Keras on {backend}: mixed_bfloat16"
    ]


def test_the_packaged_speeds_are_read_and_a_damaged_file_gives_no_hint(tmp_path):
    assert all(set(speeds.KEY) <= set(e) and e["cpu_class"] for e in speeds.read())
    (tmp_path / "speeds.json").write_text("{not json")
    assert speeds.read(tmp_path / "speeds.json") == [] and speeds.read(tmp_path / "missing.json") == []
