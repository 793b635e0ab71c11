"""``python -m pipeline.ingest --out data/ingested.parquet --metrics metrics/ingest.json``"""

import sys

from pipeline.ingest import main

sys.exit(main())
