# Sourced by run_training.sh and scripts/test.sh: create or reuse .venv and install
# requirements.txt into it (skipped when requirements.txt has not changed since last time).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$repo_root/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "installing requirements.txt into $venv (the first time takes a few minutes)"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo_root/requirements.txt"
    echo "$wanted" > "$stamp"
fi
PYTHON_BIN="$venv/bin/python"
