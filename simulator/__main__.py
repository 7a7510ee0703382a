"""Command line: `python -m simulator generate|advance|summary`. See the README for the world it writes."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from simulator.config import PRESETS
from simulator.world import Progress, advance, generate


def source_sizes(out_dir: Path) -> list[tuple[str, int, int]]:
    """(source, files, bytes) for each folder under landing/."""
    landing = out_dir / "landing"
    rows = []
    for source in sorted(p for p in landing.iterdir() if p.is_dir()) if landing.exists() else []:
        files = [f for f in source.rglob("*") if f.is_file()]
        rows.append((source.name, len(files), sum(f.stat().st_size for f in files)))
    return rows


def parse_overrides(preset: str, assignments: list[str]) -> dict[str, object]:
    """`FIELD=VALUE` strings to typed WorldConfig overrides (numbers, text, booleans and dates)."""
    defaults = PRESETS[preset]
    overrides: dict[str, object] = {}
    for assignment in assignments:
        name, _, raw = assignment.partition("=")
        if not hasattr(defaults, name) or name == "preset":
            raise ValueError(f"--set {assignment!r}: no such setting; see WorldConfig in simulator/config.py")
        current = getattr(defaults, name)
        if isinstance(current, bool):
            value: object = raw.lower() in ("1", "true", "yes")
        elif isinstance(current, int | float | str):
            value = type(current)(raw)
        elif isinstance(current, dt.date):
            value = dt.date.fromisoformat(raw)
        else:
            raise ValueError(f"--set {name}: only numbers, text, booleans and dates can be set from the command line")
        overrides[name] = value
    return overrides


def forecast_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD") from None


def print_summary(out_dir: Path) -> None:
    print(f"{'source':<10} {'files':>8} {'MB':>10}")
    for source, files, size in source_sizes(out_dir):
        print(f"{source:<10} {files:>8,} {size / 1e6:>10.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write a new world's landing files and truth")
    gen.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--out", type=Path, default=Path("data"))
    gen.add_argument("--faults", action="store_true", help="plant known defects, listed in truth/faults.csv")
    gen.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the preset's WorldConfig (simulator/config.py), e.g. --set sales_model=pods",
    )
    gen.add_argument(
        "--future-seed",
        type=int,
        default=None,
        help="the same world up to --forecast-date, then another random future drawn with this seed",
    )
    gen.add_argument(
        "--forecast-date",
        type=forecast_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="where the future seed's future begins (required with --future-seed)",
    )
    gen.add_argument("--quiet", action="store_true")
    adv = commands.add_parser("advance", help="continue an existing world and write only the new daily drops")
    adv.add_argument("--days", type=int, required=True)
    adv.add_argument("--out", type=Path, default=Path("data"))
    adv.add_argument("--quiet", action="store_true")
    summ = commands.add_parser("summary", help="files and size of each source under OUT/landing")
    summ.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            overrides = parse_overrides(args.preset, args.set)
            generate(
                args.preset,
                args.seed,
                args.out,
                faults=args.faults,
                progress=Progress(args.quiet),
                future_seed=args.future_seed,
                forecast_date=args.forecast_date,
                **overrides,
            )
        elif args.command == "advance":
            advance(args.out, args.days, progress=Progress(args.quiet))
        if not getattr(args, "quiet", False):
            print_summary(args.out)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
