"""The production monitor: prediction-log window -> teacher sample -> Evidently reports -> verdict -> alert.

    distill monitor                      # or: python -m pipeline.stages.monitor

Parts: ``window`` (which rows), ``descriptors`` (text features and the reference vocabulary),
``reference`` (held-out rows with the student's predictions), ``teacher_sample`` (periodic teacher
comparison through the label cache, within a budget), ``reports`` (Evidently reports, workspace,
dashboard), ``verdict`` (thresholds), ``alert`` (webhook and Prefect event), ``feedback`` (disagreements
for the next transfer set), ``run`` (one monitor run end to end).
"""

from pipeline.monitor.run import MonitorResult, run_monitor

__all__ = ["MonitorResult", "run_monitor"]
