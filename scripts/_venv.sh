# Shared by scripts/serve and scripts/test: make .venv if missing and install the project.
# Set VENV_EXTRA=dev before sourcing to install the test dependencies too.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
EXTRA="${VENV_EXTRA:-}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
spec="$ROOT"
[ -n "$EXTRA" ] && spec="$ROOT[$EXTRA]"
stamp="$VENV/.installed-${EXTRA:-base}"
fresh() { [ -f "$1" ] && [ ! "$ROOT/pyproject.toml" -nt "$1" ]; }
# A dev install holds everything a plain one needs.
if ! fresh "$stamp" && ! { [ -z "$EXTRA" ] && fresh "$VENV/.installed-dev"; }; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install --quiet -e "$spec"
    touch "$stamp"
fi
