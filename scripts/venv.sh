# Sourced by run_training.sh and scripts/test.sh: create or reuse .venv, install
# requirements.txt and this repository (editable, so scripts/ and `srgan-*` commands run the
# checkout's code). Skipped when neither file has changed since last time.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
wanted="$(cat "$repo_root/requirements.txt" "$repo_root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "installing requirements.txt and the srgan package into $venv (the first time takes a few minutes)"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo_root/requirements.txt"
    # --no-deps: requirements.txt already holds them; --no-build-isolation: build with the
    # venv's setuptools instead of downloading one.
    "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo_root"
    echo "$wanted" > "$stamp"
fi
PYTHON_BIN="$venv/bin/python"
