"""``python -m facestyle_utils``: see :mod:`facestyle_utils.cli`."""
import sys

from .cli import main

sys.exit(main())
