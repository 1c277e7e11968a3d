#!/usr/bin/env bash
# Create/update .venv with the test extras, install the browser the UI tests drive, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 (CPU wheel) is pinned in pyproject.toml; installing it first keeps pip off CUDA builds.
# requirements.lock (scripts/lock.sh) pins every other package to the versions tested and audited.
.venv/bin/python -m pip install -q -c requirements.lock "torch==2.13.0" -e ".[test,bench,ocr]"
if .venv/bin/python -m pip list 2>/dev/null | grep -i '^nvidia'; then
  echo "error: CUDA packages were installed; torch must be the CPU wheel" >&2; exit 1
fi
# Debian's Chromium and a CJK font for the browser tests (never skipped in CI).
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi -e wqy -e "Noto Sans CJK"; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
# The OCR engine's OpenCV needs libGL and GLib (the OCR tests render Chinese with fonts-wqy-microhei).
if ! .venv/bin/python -c "import rapidocr_onnxruntime" 2>/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libgl1 libglib2.0-0 >/dev/null
fi
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
.venv/bin/mypy src/talentbot
exec .venv/bin/python -m pytest "$@"
