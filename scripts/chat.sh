#!/usr/bin/env bash
# Create .venv, install talentbot, ingest corpus/ and open the chat at http://127.0.0.1:7860
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# [ocr]: scanned PDFs and images of notices (rapidocr-onnxruntime, CPU, models in the wheel).
.venv/bin/python -m pip install -q -c requirements.lock "torch==2.13.0" -e ".[ocr]"
if ! .venv/bin/python -c "import rapidocr_onnxruntime" 2>/dev/null; then
  echo "warning: OCR cannot load (OpenCV needs libGL): sudo apt-get install libgl1 libglib2.0-0" >&2
fi
# bytecode now, as an installed package has it (an editable install writes none; PYTHONDONTWRITEBYTECODE in
# the environment would have every `talentbot ask` compile the modules again)
.venv/bin/python -m compileall -q src/talentbot >/dev/null
.venv/bin/talentbot ingest corpus
exec .venv/bin/talentbot serve "$@"
