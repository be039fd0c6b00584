#!/usr/bin/env bash
# README command 1: set up `.venv/` and run the main job: draw lottery tickets with IMP on the embedded MNIST-5k digits.
# Extra arguments go to the job (see `.venv/bin/lottery_fastai draw --help`).
source "$(dirname "$0")/env.sh"
exec lottery_fastai draw --path runs/main "$@"
