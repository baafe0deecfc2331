#!/usr/bin/env bash
# Second Python environments the test suite runs models in (--model-python): packages that
# cannot share the main environment. Today one: .venv-models/sevenn holds sevenn (e3nn >= 0.5),
# which mace-torch (pinned to e3nn 0.4.4, in the main environment) excludes.
# Reused when it is present and imports; rebuilt when it is broken. Needs pip to reach PyPI
# (the tests themselves never download); where it cannot, it says so and exits 0: the tests
# that need the environment then skip, naming it.
# Usage: tests/install-model-envs.sh [PYTHON]   (default: python3, the one on PATH)
set -uo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
dir=.venv-models/sevenn
check='import numpy, ase, sevenn, e3nn; from sevenn.calculator import SevenNetCalculator'
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" 2>/dev/null; then
    exit 0
fi
rm -rf "$dir"
mkdir -p .venv-models
started=$(date +%s)
# the CPU build of torch first: any other torch spec pulls several GB of CUDA
if "$python" -m venv "$dir" \
    && "$dir/bin/pip" install -q --disable-pip-version-check torch==2.13.0 \
    && "$dir/bin/pip" install -q --disable-pip-version-check 'sevenn==0.13.*' ase numpy \
    && "$dir/bin/python" -c "$check"; then
    echo "tests: built $dir in $(( $(date +%s) - started )) s" >&2
else
    echo "tests: could not build $dir (pip install torch==2.13.0 sevenn ase numpy);" \
         "the --model-python tests that need it will skip" >&2
    rm -rf "$dir"
fi
exit 0
