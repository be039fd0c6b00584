#!/usr/bin/env bash
# README command 1: set up `.venv/` and run the main job on the embedded MNIST-5k data.
# Extra arguments go to `lottery_fastai draw` (see `lottery_fastai draw --help`).
source "$(dirname "$0")/env.sh"
lottery_fastai train --path runs/main "$@"
