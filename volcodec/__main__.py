"""``python -m volcodec``: the same command line as the ``volcodec`` script."""

import sys

from .cli import main

sys.exit(main())
