"""``python -m pipeline.distill``: see :mod:`pipeline.distill`."""

import sys

from pipeline.distill import main

if __name__ == "__main__":
    sys.exit(main())
