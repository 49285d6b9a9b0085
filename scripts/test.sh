#!/usr/bin/env bash
# Set up a fresh machine and run the whole petseg test suite (the README's test command).
# Installs the DICOM validators and the browser the tests use when running as root,
# installs petseg with its test and nnU-Net extras (torch pinned to the local CPU build by
# constraints.txt), then runs pytest (long trainings are behind the `slow` marker).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dciodvfy >/dev/null || need+=(dicom3tools)
command -v plastimatch >/dev/null || need+=(plastimatch)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "not root: ${need[*]} not installed; the tests that need them will be skipped with a reason"
  fi
fi

python3 -m pip install -q -c constraints.txt -e ".[test,nnunet]"
# PyPI's torchvision (pulled in by nnU-Net through timm) is a CUDA build that cannot load
# beside the CPU torch of constraints.txt; nnU-Net's default architectures need neither
# torchvision nor timm, so remove them when torchvision does not import (docs/nnunet.md).
if ! python3 -c "import torchvision" >/dev/null 2>&1; then
  python3 -m pip uninstall -q -y torchvision timm
fi
python3 -m pytest "$@"
