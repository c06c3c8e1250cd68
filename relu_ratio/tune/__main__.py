"""``python -m relu_ratio.tune``: see :mod:`relu_ratio.tune.cli`."""

from relu_ratio import flags
from relu_ratio.tune.cli import main

flags.exit_with(main)
