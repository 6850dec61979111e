"""``python -m lamina``: runs the command line (the demo by default)."""

import sys

from .cli import main

sys.exit(main())
