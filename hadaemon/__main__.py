"""``python -m hadaemon`` is the ``hadaemon`` command."""

import sys

from hadaemon.cli import main

sys.exit(main())
