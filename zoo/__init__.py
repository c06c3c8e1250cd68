"""Data package ``relu_ratio.zoo_store``: the model zoo's entries, one folder each (see README.md).

Installed as ``relu_ratio/zoo_store/`` by the wheel (``[tool.setuptools.package-dir]`` in pyproject.toml);
read it through :mod:`relu_ratio.zoo`, never import it directly.
"""
