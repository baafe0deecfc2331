#!/usr/bin/env bash
# Second Python environments the test suite runs models in (--model-python): packages that
# cannot share the main environment, one environment each under .venv-models/<family>.
# Always: sevenn (e3nn >= 0.5, which mace-torch, pinned to e3nn 0.4.4 in the main environment,
# excludes). Opt-in, because each costs minutes to build (torch again, and the package's own
# stack): --with orb (orb-models), --with mattersim, --with aimnet2 (aimnet), or several:
# --with orb,mattersim,aimnet2.
# Reused when present and importing; rebuilt when broken. Needs pip to reach PyPI (the tests
# themselves never download); where it cannot, it says so and exits 0: the tests that need
# the environment then skip, naming this script.
# Usage: tests/install-model-envs.sh [--with FAMILY[,FAMILY]] [PYTHON]   (default python3)
set -uo pipefail
cd "$(dirname "$0")/.."
extra=""
if [ "${1:-}" = "--with" ]; then
    extra=${2:-}
    shift 2
fi
python=${1:-python3}

# build NAME CHECK DROP SPEC...: .venv-models/NAME with torch==2.13.0 (the CPU build: any
# other torch spec pulls several GB of CUDA; the pin also refuses a package that wants another
# torch) and SPEC..., less the packages DROP names, unless it is there and CHECK runs in it
build() {
    local name=$1 check=$2 drop=$3
    shift 3
    local dir=.venv-models/$name
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" 2>/dev/null; then
        return 0
    fi
    rm -rf "$dir"
    mkdir -p .venv-models
    local started pin
    started=$(date +%s)
    pin=$(mktemp)
    echo "torch==2.13.0" > "$pin"
    if "$python" -m venv "$dir" \
        && "$dir/bin/pip" install -q --disable-pip-version-check torch==2.13.0 \
        && "$dir/bin/pip" install -q --disable-pip-version-check -c "$pin" "$@" ase numpy \
        && { [ -z "$drop" ] || "$dir/bin/pip" uninstall -q -y $drop; } \
        && "$dir/bin/python" -c "$check"; then
        echo "tests: built $dir in $(( $(date +%s) - started )) s" >&2
    else
        echo "tests: could not build $dir (pip install torch==2.13.0 $* ase numpy);" \
             "the --model-python tests that need it will skip" >&2
        rm -rf "$dir"
    fi
    rm -f "$pin"
}

build sevenn 'import numpy, ase, sevenn, e3nn; from sevenn.calculator import SevenNetCalculator' \
    "" 'sevenn==0.13.*'
for family in ${extra//,/ }; do
    case $family in
        orb) build orb 'import numpy, ase; from orb_models.forcefield import pretrained' \
                 "" 'orb-models==0.5.*' ;;
        # mattersim requires torchvision and torchaudio; PyPI's torchvision 0.28.0 (the one
        # for torch 2.13.0) is a CUDA build whose operators fail to load beside the CPU torch,
        # and torchmetrics imports it when present: mattersim's force field uses neither
        mattersim) build mattersim 'import numpy, ase; from mattersim.forcefield import Potential' \
                 "torchvision torchaudio" 'mattersim==1.2.*' ;;
        aimnet2) build aimnet2 'import numpy, ase; from aimnet.calculators import AIMNet2ASE' \
                 "" 'aimnet==0.2.*' ;;
        *) echo "tests: no model environment named $family (known: orb, mattersim, aimnet2)" >&2 ;;
    esac
done
exit 0
