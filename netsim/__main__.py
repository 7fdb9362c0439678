"""``python -m netsim``: see :mod:`netsim.cli`."""

import sys

from netsim.cli import main

sys.exit(main())
