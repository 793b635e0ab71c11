#!/usr/bin/env bash
# Debian packages the test suite drives for real, installed only when missing (one apt-get run):
#   postgresql  - the registry tests start a real PostgreSQL server
#   prometheus  - tests/infra runs promtool on the Prometheus config and alert rules
#   chromium    - the monitor test screenshots the Evidently dashboard headless
#   wrk         - benchmarks/serve_load.py drives the model server with it (httpx when missing)
#   cmake, g++, ninja-build - `distill llm-local install` builds llama.cpp's server for the real LLM teacher
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages for the tests: ${missing[*]}"
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
