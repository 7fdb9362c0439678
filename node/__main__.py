"""``python -m node``: the ``bighealth`` command line (see ``node.cli``)."""

import sys

from node.cli import main

sys.exit(main())
