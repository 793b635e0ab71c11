import sys

from pipeline.monitor.run import main

sys.exit(main())
