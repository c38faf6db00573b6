"""``python -m cli`` is ``curate``."""

import sys

from cli import main

sys.exit(main())
