#!/bin/sh
# Pull step of infra/prefect/prefect.yaml, run inside a fresh clone by the Prefect worker: point the
# checkout's .distill/artifacts and .distill/evidently at the worker's shared volumes (mounted under
# /app/.distill, see infra/compose.yaml and infra/k8s/prefect.yaml), then fetch the DVC outputs the
# pipeline already has, so `dvc repro` re-runs only what changed.
set -eu
shared=${DISTILL_SHARED_DIR:-/app/.distill}
mkdir -p .distill
for name in artifacts evidently; do
  ln -sfn "$shared/$name" ".distill/$name"
done
if [ -f .dvc/config.local ] || dvc remote list | grep -q .; then
  dvc pull --allow-missing || echo "dvc pull failed: stages will re-run from scratch" >&2
fi
