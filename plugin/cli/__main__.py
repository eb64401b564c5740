"""`python -m plugin.cli`: the console script without its entry's Ctrl-C guard."""

from __future__ import annotations

import sys

from plugin.cli.app import main

sys.exit(main())
