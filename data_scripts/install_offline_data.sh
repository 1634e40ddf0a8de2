#!/usr/bin/env bash
# Make Fashion-MNIST available for the course, the offline way first.
#   usage: data_scripts/install_offline_data.sh [PYTHON]     (PYTHON defaults to `python`)
# 1. already found ($TLCOURSE_DATA, user cache, /usr/share/datasets)?  done, silently;
# 2. root with apt-get?  install Debian's dataset-fashion-mnist (apt-get update only if needed);
# 3. else download from upstream into the user cache (or $TLCOURSE_DATA), SHA-256 checked.
# The other datasets ship with scikit-learn and matplotlib: nothing to install.
set -euo pipefail

PY="${1:-python}"
FIND='from tlcourse.library.data import find_fashion_mnist; find_fashion_mnist()'
# On failure print the library's message (it says what to do), not a traceback.
FETCH='import sys
from tlcourse.library.data import fetch_fashion_mnist
try:
    fetch_fashion_mnist()
except Exception as err:
    sys.exit(f"{type(err).__name__}: {err}")'

if ! "$PY" -c 'import tlcourse.library.data' >/dev/null 2>&1; then
    echo "install_offline_data: '$PY' cannot import tlcourse; install the course first (pip install -e .)." >&2
    exit 1
fi

if "$PY" -c "$FIND" >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >"$log" 2>&1; then
        # A fresh container has no package lists yet: fetch them once and try again.
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >>"$log" 2>&1 || true
    fi
    if "$PY" -c "$FIND" >/dev/null 2>&1; then
        exit 0
    fi
    echo "install_offline_data: apt-get could not install dataset-fashion-mnist; downloading from upstream instead." >&2
    sed 's/^/  apt: /' "$log" | tail -n 5 >&2
fi

if ! "$PY" -c "$FETCH"; then
    echo "install_offline_data: could not get Fashion-MNIST (see the message above)." >&2
    echo "  Offline? Install Debian's dataset-fashion-mnist, or put the four .gz files in \$TLCOURSE_DATA/fashion-mnist/." >&2
    exit 1
fi
