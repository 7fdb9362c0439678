"""``python -m netsim``: see :mod:`netsim.cli`."""

import os
import sys

from netsim.cli import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:  # the reader went away (e.g. piped into ``head``): stop quietly
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 1
sys.exit(status)
