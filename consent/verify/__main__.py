"""``python -m consent.verify FILE [--proof PROOF] [--keys KEYS]``: verify an export offline (see offline.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from consent.verify.offline import UNUSABLE, run


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, verify, and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m consent.verify",
        description="Verify a consent export (CSV, JSON Lines, ISO 27560 JSON Lines or a bundle zip) offline.",
        epilog="Exit status: 0 intact, 1 not intact, 2 unusable input, 3 intact but keys unchecked (no --keys).",
    )
    parser.add_argument("file", type=Path, help="the exported file, or a bundle (.zip)")
    parser.add_argument("--proof", type=Path, help="the export's proof (consent export --proof); a bundle has its own")
    parser.add_argument("--keys", help="the site's published key set: a JSON file or an http(s) URL")
    arguments = parser.parse_args(argv)
    if not arguments.file.is_file():
        parser.error(f"{arguments.file}: no such file")
        return UNUSABLE
    return run(arguments.file, arguments.proof, arguments.keys)


if __name__ == "__main__":
    sys.exit(main())
