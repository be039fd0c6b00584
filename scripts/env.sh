# Sourced by main.sh and test.sh: create `.venv/` at the repo root, or reuse it, and install the project into it.
# The install is redone only when settings.ini or setup.py change (a stamp file remembers what was installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[lottery_fastai] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.lottery-installed-$(cat settings.ini setup.py | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[lottery_fastai] installing the project and its dev tools into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  rm -f .venv/.lottery-installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
