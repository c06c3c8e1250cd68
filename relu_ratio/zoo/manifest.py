"""Deprecated (removed in the next release): the sha256 of the shipped weights now live, with each
preset's file, metrics and description, in the package's ``presets.json`` (:mod:`relu_ratio.zoo.presets`).

``manifest.SHA256`` (name -> sha256) still works for this release, read from ``presets.json``, with a
``DeprecationWarning``.

Example:
    >>> from relu_ratio.zoo import presets
    >>> presets.read()["resnet20_21"].sha256                           # doctest: +SKIP
"""

from __future__ import annotations

from relu_ratio.user_warning import warn
from relu_ratio.zoo import presets


def __getattr__(name: str) -> dict[str, str]:
    if name != "SHA256":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warn(
        "relu_ratio.zoo.manifest.SHA256 is deprecated and will be removed in the next release; use "
        "relu_ratio.zoo.presets.read() (zoo name -> Preset, with .sha256).",
        DeprecationWarning,
    )
    return {entry: preset.sha256 for entry, preset in presets.read().items()}
