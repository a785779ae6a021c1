# Sourced by run_training.sh and scripts/test.sh: create or reuse .venv, install a requirements
# file and this repository (editable, so scripts/ and `srgan-*` commands run the checkout's
# code). The caller names the file in $requirements: requirements.txt (running, the default)
# or requirements-dev.txt (the tests: pytest, ruff and the optional packages on top). Skipped
# when nothing it depends on has changed since that file was last installed.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
requirements="${requirements:-requirements.txt}"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
stamp="$venv/.$requirements.sha256"
wanted="$(cd "$repo_root" && cat requirements*.txt pyproject.toml setup.py | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "installing $requirements and the srgan package into $venv (the first time takes a few minutes)"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo_root/$requirements"
    # --no-deps: the requirements file already holds them; --no-build-isolation: build with the
    # venv's setuptools instead of downloading one.
    "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo_root"
    echo "$wanted" > "$stamp"
fi
PYTHON_BIN="$venv/bin/python"
