import sys

from pipeline.evaluate.stage import main

sys.exit(main())
