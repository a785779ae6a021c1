#!/usr/bin/env bash
# Run first on a GPU box: correctness and speed of the CUDA/NCCL paths, one line per check in
# OUT_DIR/summary.txt (default results/gpu_check/); exit 1 when a check falls short.
#   bash scripts/gpu_check.sh [--dry-run] [--only CHECK]... [OUT_DIR]
# --dry-run: the same checks on the CPU at tiny sizes (CUDA-only ones skipped), in under 3 min.
# Uses .venv when there is one, else $PYTHON or python3 as it is (no install, no network).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if [ -x "$repo_root/.venv/bin/python" ]; then
    python="$repo_root/.venv/bin/python"
fi
cd "$repo_root"
PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m srgan.commands.gpu_check "$@"
