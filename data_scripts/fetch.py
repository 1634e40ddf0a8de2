#!/usr/bin/env python
"""Fetch, check or list the course's datasets, with the options the short command does not have.

    python data_scripts/fetch.py mnist svhn usps          # download and check (SHA-256 / MD5)
    python data_scripts/fetch.py pacs --allow-unverified  # PACS: no checksum is published anywhere
    python data_scripts/fetch.py --check office31         # re-check a copy against the published sums
    python data_scripts/fetch.py --list                   # every dataset, its status and its source
    python data_scripts/fetch.py --all --root /data/tl    # every benchmark and text corpus, into a folder you choose

Downloads go to --root, else $TLCOURSE_DATA, else the user cache (~/.cache/tlcourse). Each dataset lands
whole or not at all; see data_scripts/README.md for the URLs, sums, sizes and licences. Exit status: 0
when every dataset is ready (or checks out), 1 when a check failed, 2 on an error (the message says what
to do).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python data_scripts/fetch.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="datasets to fetch (see --list)")
    parser.add_argument(
        "--all",
        action="store_true",
        help="every benchmark and text corpus with published checksums (add --allow-unverified to include PACS)",
    )
    parser.add_argument("--root", type=Path, help="data root to download to (sets TLCOURSE_DATA for this run)")
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="also download files that have no published checksum (PACS); their measured "
        "SHA-256 is written to UNVERIFIED-SHA256SUMS next to the data",
    )
    parser.add_argument("--check", action="store_true", help="check the named datasets instead of fetching")
    parser.add_argument("--list", action="store_true", help="list every dataset and where it is")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.root is not None:
        os.environ["TLCOURSE_DATA"] = str(args.root.expanduser().resolve())
    from tlcourse.library.data import BENCHMARKS, catalog, unverified_sums

    if args.list:
        for row in catalog.list_datasets():
            print(
                f"{row['name']:<14} {row['status']:<8} {row['location']}\n    {row['description']}\n    {row['source']}"
            )
        return 0
    names = list(args.names)
    if args.all:
        names += [b.name for b in BENCHMARKS.values() if (b.verified or args.allow_unverified) and b.name not in names]
    if not names:
        print("Name at least one dataset (see --list), or pass --all.", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        try:
            if args.check:
                print(f"{name}:")
                status = max(status, 0 if catalog.check_dataset(name) else 1)
                continue
            folder = catalog.fetch_dataset(name, progress=not args.quiet, allow_unverified=args.allow_unverified)
            print(f"{name}: ready in {folder}")
            sums = unverified_sums(folder) if name in BENCHMARKS else None
            if sums:
                print(
                    f"  WARNING: {name} has no published checksum; the files were not verified. Their "
                    "measured SHA-256 (pin them for your lab):"
                )
                print("".join(f"    {line}\n" for line in sums.splitlines() if not line.startswith("#")), end="")
        except (ValueError, OSError) as err:  # our errors carry the fix in their message
            print(f"error: {name}: {err}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
