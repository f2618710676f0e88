"""``python -m nortonkit.train``: see :mod:`nortonkit.train.cli`."""

import sys

from .cli import main

sys.exit(main())
