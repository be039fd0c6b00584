#!/usr/bin/env bash
# Here (with the package registries), before a GPU run: the wheels that the device machine's Python 3.12 lacks for
# `import lottery_fastai` (its image has torch, pandas, scipy, safetensors, filelock, matplotlib; not fastai and what
# fastai's progress bars import). They go to .whl/ (ignored by git), which the device run carries; scripts/gpu_check.sh
# installs them there. The list is the import closure of our pins minus the image's packages (spaCy, which only
# fastai.text imports, left out).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d .whl fastai==2.8.7 fastcore==1.14.5 fastprogress==1.1.6 fastdownload==0.0.8 fasttransform==0.0.2 \
  plum-dispatch==2.9.0 beartype==0.23.1 mlxtend==0.25.0 python-fasthtml==0.14.5 starlette==1.10.0 uvicorn==0.54.0 \
  oauthlib==4.0.1 itsdangerous==2.2.0 python-multipart==0.0.34 beautifulsoup4==4.15.0 soupsieve==4.1.3 \
  fastlite==0.2.4 apswutils==0.1.2 apsw==3.54.1.0
du -sh .whl && ls .whl
