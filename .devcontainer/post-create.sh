#!/usr/bin/env bash
# Runs once when the container is created: reuse the llama-cpp-python wheel the image
# built (no compile), then the README's install and a health check.
set -euo pipefail
mkdir -p .wheels
cp -n /opt/wheels/llama_cpp_python-*.whl .wheels/ 2>/dev/null || true
make install
.venv/bin/workbench doctor
echo "Ready: .venv/bin/workbench tour, then .venv/bin/workbench lab 1 --host 0.0.0.0 --no-browser"
