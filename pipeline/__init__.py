"""distill: turn an expensive teacher classifier into a small, fast, quantized student.

Importing the package switches off the telemetry of the tools it drives (Prefect, DVC, Evidently,
onnxruntime, Great Expectations). A value the user already set is left alone.
"""

import os

_QUIET = {
    "DO_NOT_TRACK": "1",  # Evidently (and other tools honouring the convention)
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "ORT_DISABLE_TELEMETRY": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # A busy 2-core machine needs more than Prefect's default 20 s to start its ephemeral server.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "TOKENIZERS_PARALLELISM": "false",
}
for _key, _value in _QUIET.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
