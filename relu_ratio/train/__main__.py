"""``python -m relu_ratio.train``: see :mod:`relu_ratio.train.cli`."""

import sys

from relu_ratio.train.cli import main

sys.exit(main())
