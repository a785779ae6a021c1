#!/usr/bin/env bash
# Run the test suite (CPU), creating/updating .venv with requirements-dev.txt first. Extra
# arguments go to pytest.
set -euo pipefail
requirements=requirements-dev.txt
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$repo_root"
"$PYTHON_BIN" -m pytest "$@"
