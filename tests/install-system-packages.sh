#!/usr/bin/env bash
# System packages the test suite uses for real (not mocked): a one-node Slurm (tests/test_slurm.py
# starts a private cluster) and headless Chromium (tests/test_report.py renders the HTML report).
# Installs only what is missing; needs root and apt-get (Debian/Ubuntu). Elsewhere it says what to
# install and exits 0: those tests then skip, naming the missing program.
set -euo pipefail
want=()
[ -x /usr/sbin/slurmctld ] || want+=(slurmctld slurmd slurm-client)
command -v chromedriver >/dev/null || want+=(chromium chromium-driver)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "tests: install ${want[*]} (Debian names) to run the Slurm and browser tests" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
