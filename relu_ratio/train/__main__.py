"""``python -m relu_ratio.train``: see :mod:`relu_ratio.train.cli`."""

from relu_ratio import flags
from relu_ratio.train.cli import main

flags.exit_with(main)
