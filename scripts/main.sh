#!/usr/bin/env bash
# README command 1: set up `.venv/` and run the main job on the embedded MNIST-5k digits: draw lottery tickets
# of a small ResNet with IMP, then spend them with vanilla and AT+TRT, and print the comparison.
# `--full` runs the full-scale setting (for a GPU); see `.venv/bin/lottery_fastai main --help`.
source "$(dirname "$0")/env.sh"
exec lottery_fastai main "$@"
