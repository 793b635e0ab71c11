"""``python -m pipeline.label``: run the label stage (see pipeline.label)."""

from pipeline.label.stage import main

raise SystemExit(main())
