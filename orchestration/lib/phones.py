"""Phone numbers to E.164 with `phonenumbers`, each distinct text parsed once.

`phonenumbers` parses about 35,000 numbers per second on the reference machine, while the CSV reader moves about
600,000 rows per second, so parsing per row would dominate a load. Call records repeat the same few numbers (a rep's
line, a customer's switchboard) thousands of times: `PhoneNormalizer` keeps every answer it has given, and the loader
asks it only about the distinct (text, region) pairs of a file.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True)
class Normalized:
    """The E.164 form of a number, or why there is none."""

    e164: str | None
    problem: str | None = None


def normalize_phone(text: str, default_region: str | None = None) -> Normalized:
    """E.164 for `text`, read as a national number of `default_region` unless it starts with '+' (or 00).

    Numbers without a country code are read in `default_region` first; when that gives no valid number and the text
    is all digits, it is read once more as international with the '+' left off, which is how many call-detail
    exports write numbers ("442079460018").
    """
    stripped = text.strip()
    if not stripped:
        return Normalized(None)
    region = (default_region or "").strip().upper() or None
    number = _valid(stripped, region)
    if number is None and stripped.isdigit() and not stripped.startswith("0"):
        number = _valid("+" + stripped, None)
    if number is None:
        where = f" for {region}" if region and not stripped.startswith("+") else ""
        return Normalized(None, f"is not a valid phone number{where}")
    return Normalized(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _valid(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _normalize_chunk(pairs: list[tuple[str, str | None]]) -> list[Normalized]:
    return [normalize_phone(text, region) for text, region in pairs]


class PhoneNormalizer:
    """Remembers the answer for every (text, region) pair it has seen; one per ingest run.

    Large batches of new numbers (an initial load) are parsed on every core: below `parallel_from` new pairs the
    cost of starting worker processes (about half a second) outweighs the gain.
    """

    def __init__(self, workers: int | None = None, parallel_from: int = 20_000) -> None:
        self._known: dict[tuple[str, str | None], Normalized] = {}
        self.workers = workers or os.cpu_count() or 1
        self.parallel_from = parallel_from

    def normalize(self, pairs: Iterable[tuple[str, str | None]]) -> list[tuple[str, str | None, Normalized]]:
        """(text, region, answer) for each distinct pair given, parsing only the pairs not seen before."""
        pairs = list(pairs)
        new = list(dict.fromkeys(pair for pair in pairs if pair not in self._known))
        if len(new) >= self.parallel_from and self.workers > 1:
            size = -(-len(new) // (self.workers * 4))
            chunks = [new[start : start + size] for start in range(0, len(new), size)]
            context = multiprocessing.get_context("spawn")  # no fork: the caller holds DuckDB's threads
            with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
                answers = [answer for chunk in pool.map(_normalize_chunk, chunks) for answer in chunk]
        else:
            answers = _normalize_chunk(new)
        self._known.update(zip(new, answers, strict=True))
        return [(text, region, self._known[(text, region)]) for text, region in pairs]

    @property
    def parsed(self) -> int:
        """How many distinct pairs have been parsed so far."""
        return len(self._known)
