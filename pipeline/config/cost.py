"""params.yaml `cost` section: the price of compute, for the cost report (pipeline/cost.py)."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class CostConfig(Section):
    # USD per CPU core-hour, to price the student and local teachers by the CPU time they measurably take.
    # Default: AWS EC2 c7i.large on-demand in us-east-1, $0.08925 per hour for 2 vCPUs (list price, 2024);
    # put your own machine's price here.
    usd_per_core_hour: float = Field(default=0.0446, gt=0)
