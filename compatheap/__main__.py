"""``python -m compatheap``: the same as the ``compatheap`` command."""

import sys

from ._cli import main

sys.exit(main())
