"""List the model zoo: what each model is, its size, licence, input convention, and
whether its weights are already in the local cache (``$FACEPRIOR_HOME`` or the user cache).

Download a model ahead of time with ``faceprior models --download NAME``.
"""

from __future__ import annotations

import argparse

HELP = "list the model zoo and what is cached; download models ahead of time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--download",
        metavar="NAME",
        nargs="+",
        help="download these zoo models into the cache (verifying their checksums) and exit",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the zoo as JSON instead of a table"
    )


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from faceprior.hub import download
    from faceprior.hub.zoo import entries, get_entry

    if args.download:
        for name in args.download:
            print(f"{name}: {download.fetch(get_entry(name))}")
        return 0
    rows = []
    for entry in entries().values():
        cached = entry.bundled or download.cached_path(entry).exists()
        rows.append((entry, cached))
    if args.json:
        print(json.dumps([dict(asdict(e), cached=c) for e, c in rows], indent=1))
        return 0
    print(f"cache: {download.weights_dir()}")
    header = ("name", "architecture", "in/out px", "params", "cached", "licence")
    table = [header] + [
        (
            e.name,
            e.architecture,
            f"{e.input_size or '-'}/{e.output_size or '-'}",
            f"{e.parameters / 1e6:.1f}M" if e.parameters else "-",
            "bundled" if e.bundled else ("yes" if cached else "no"),
            e.licence.split(";")[0][:40],
        )
        for e, cached in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
