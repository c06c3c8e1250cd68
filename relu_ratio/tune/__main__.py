"""``python -m relu_ratio.tune``: see :mod:`relu_ratio.tune.cli`."""

import sys

from relu_ratio.tune.cli import main

sys.exit(main())
