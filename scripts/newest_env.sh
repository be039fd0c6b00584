#!/usr/bin/env bash
# The library as a user installs it into their own environment: `pip install .` (no dev extra, so none of the
# development pins) next to the newest fastai and fastcore pip resolves, in a second virtualenv `.venv-newest/`, then
# the tests that drive every job through the installed command. Called by test.sh after the main suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
D=.venv-newest
SP=$D/lib/python$($PY -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')/site-packages
[ -x $D/bin/python ] || "$PY" -m venv $D
# torch, torchvision and their CUDA libraries (about 5 GB) are linked from .venv rather than copied: a .pth file puts
# them after this environment's own packages, so pip counts torch as installed and installs everything else here
mkdir -p $D/shared-torch
for p in .venv/lib/python*/site-packages/{torch,torchgen,torchvision,torchvision.libs,triton,nvidia,cuda}{,-*.dist-info,_*.dist-info}; do
  [ -e "$p" ] && ln -sfn "$PWD/$p" $D/shared-torch/
done
echo "$PWD/$D/shared-torch" > $SP/shared_torch.pth
$D/bin/python -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager fastai fastcore pytest pytest-xdist
$D/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .
$D/bin/python -m pip install --quiet --disable-pip-version-check .   # and whatever of its requirements is missing
versions=$($D/bin/python -c 'import fastai, fastcore, torch; print(f"fastai {fastai.__version__}, fastcore {fastcore.__version__}, torch {torch.__version__}")')
echo "[lottery_fastai] newest environment: $versions"
# from outside the checkout, so that the installed package is the one imported
cd "$(mktemp -d)"
# two workers of one torch thread each, as the main suite runs
OMP_NUM_THREADS=1 "$OLDPWD/$D/bin/python" -m pytest -q -p no:cacheprovider -n 2 "$OLDPWD/tests/test_installed.py" \
  "$OLDPWD/tests/test_evidence.py::test_barrier_cost_runs_from_the_installed_module" \
  "$OLDPWD/tests/test_reliability.py::test_kill_and_resume_gives_the_same_bytes[draw]"
