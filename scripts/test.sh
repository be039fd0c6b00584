#!/usr/bin/env bash
# README command 2: set up `.venv/`, check that the library, the notebooks and README.md are in sync, check the modules for undefined names, run every test; then the installed package's tests in a second env with the newest fastai.
source "$(dirname "$0")/env.sh"
export FASTAI_HOME="$(mktemp -d)"   # tests never read or write the user's ~/.fastai
trap 'rm -rf "$FASTAI_HOME"' EXIT
fail() { echo "[lottery_fastai] FAILED: $*" >&2; exit 1; }
step() { echo "[lottery_fastai] $* (at $((SECONDS/60)) min $((SECONDS%60)) s)"; }

step "1/8 library in sync with the notebooks (nbdev_export)"
tmp=$(mktemp -d); cp -r lottery_fastai "$tmp/"
nbdev_export
diff -r -x __pycache__ "$tmp/lottery_fastai" lottery_fastai | head -40 || true
diff -rq -x __pycache__ "$tmp/lottery_fastai" lottery_fastai >/dev/null || fail "lottery_fastai/ was out of sync with nbs/: nbdev_export changed it; commit the result"

step "2/8 notebooks clean (nbdev_clean)"
before=$(find nbs -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -exec sha256sum {} + | sort)
nbdev_clean
after=$(find nbs -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -exec sha256sum {} + | sort)
[ "$before" == "$after" ] || fail "notebooks were not clean: nbdev_clean changed them; commit the result"

step "3/8 no undefined names in the generated modules (pyflakes), the house style (scripts/style.py)"
undefined=$(python -m pyflakes lottery_fastai/*.py | grep "undefined name '" || true)
[ -z "$undefined" ] || fail "pyflakes found undefined names (a notebook's test cell may import what the module lacks): $undefined"
python scripts/style.py >/dev/null || { python scripts/style.py; fail "scripts/style.py found offences (fix them in the notebooks, then nbdev_export)"; }

step "4/8 README.md in sync with nbs/index.ipynb"
python scripts/readme.py --check || fail "README.md differs from nbs/index.ipynb: run 'python scripts/readme.py'"

step "5/8 documentation pages and their links (scripts/docs.py)"
docs=$(mktemp -d); python scripts/docs.py "$docs" --check || fail "the documentation pages have broken links"
rm -rf "$docs"

step "6/8 notebooks (nbdev_test)"
# two notebooks at a time, one torch thread each: two 2-thread workers on 2 cores oversubscribe them (measured: 5 min, against under 2)
OMP_NUM_THREADS=1 nbdev_test --n_workers 2 --timing || fail "nbdev_test"

step "7/8 pytest tests/"
# two pytest workers (pytest-xdist), one torch thread in each test and in every process a test starts (the env is inherited);
# tests/test_installed.py is step 8's: it drives the installed command, which is the one in .venv-newest
set +e; OMP_NUM_THREADS=1 python -m pytest tests/ -q -p no:cacheprovider -n 2 --durations=30 --ignore tests/test_installed.py; rc=$?; set -e
[ $rc -eq 5 ] && fail "pytest collected no tests (exit 5): tests/ must not be empty"
[ $rc -eq 0 ] || fail "pytest exit code $rc"

step "8/8 installed without the dev pins, next to the newest fastai and fastcore (scripts/newest_env.sh)"
bash scripts/newest_env.sh || fail "the tests in .venv-newest (the newest fastai and fastcore)"
step "all checks passed"
