"""``python -m agents.cli``: the ``fireline`` command."""

import sys

from agents.cli.main import main

sys.exit(main())
