"""Phone numbers to E.164 with `phonenumbers`, each distinct text parsed once.

`phonenumbers` parses about 35,000 numbers per second on the reference machine, while the CSV reader moves about
600,000 rows per second, so parsing per row would dominate a load. Call records repeat the same few numbers (a rep's
line, a customer's switchboard) thousands of times: `PhoneNormalizer` keeps every answer it has given, and the loader
asks it only about the distinct (text, region) pairs of a file. A CRM of millions of contacts still holds millions of
distinct numbers, so the plain ones are answered by `e164_sql`, `phonenumbers`' rules as one DuckDB query, and only
the rest reach `phonenumbers`.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import duckdb
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


# The vectorized path. `phonenumbers` answers about 20,000 numbers per second per core, and a CRM of a few million
# contacts and leads holds millions of distinct numbers. Most are written in one of a few plain shapes ("(415)
# 555-0100", "+44 20 7946 0018", "030 12345678"), and for those the answer is `phonenumbers`' own rules applied to
# digits: take the country code after a '+' (or the default region's), strip the national prefix, and check the
# national number against the region's validity patterns from `phonenumbers`' metadata. `e164_sql` writes those
# rules as one DuckDB query, which gives the E.164 only when it is sure and NULL otherwise; the caller sends the NULLs
# to `normalize_phone`, so every invalid number, and every shape or region the query does not handle, gets the
# reference answer and the reference wording. tests/test_phones.py checks the two agree number by number.

# Digits with the punctuation phone numbers are written with, and at most a leading '+'. No letters: an extension
# ("x12", "ext. 5") or a vanity number goes to `phonenumbers`.
_PLAIN = r"^ *\+?[0-9 ().\-/]*[0-9][0-9 ().\-/]*$"
_DIGITS = "regexp_replace(text, '[^0-9]', '', 'g')"
_PLUS = "starts_with(ltrim(text), '+')"
_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail", "fixed_line",
    "mobile",
)  # fmt: skip


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _matches(desc: phonenumbers.PhoneNumberDesc | None, nsn: str) -> str | None:
    """SQL for `phonenumbers`' `_is_number_matching_desc(nsn, desc)`, None when it can never match."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = [length for length in desc.possible_length if length > 0]
    if desc.possible_length and not lengths:
        return None  # (-1,): the region has no numbers of this type
    match = f"regexp_full_match({nsn}, {_literal(desc.national_number_pattern)})"
    return f"(length({nsn}) in ({', '.join(map(str, lengths))}) and {match})" if lengths else match


def _valid_for_region(metadata: phonenumbers.PhoneMetadata, nsn: str) -> str:
    """SQL for `is_valid_number_for_region`: the general pattern and the pattern of one number type match."""
    general = _matches(metadata.general_desc, nsn)
    types = [sql for sql in (_matches(getattr(metadata, name), nsn) for name in _TYPES) if sql]
    if general is None or not types:
        return "false"
    return f"({general} and ({' or '.join(types)}))"


def _valid_for_code(code: int, nsn: str) -> str:
    """SQL for `is_valid_number` of a number with country code `code`: the region is the first of the code's
    regions whose leading digits match, or, for a region without leading digits, whose patterns match."""
    branches = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        if metadata is None:
            continue
        valid = _valid_for_region(metadata, nsn)
        if metadata.leading_digits:
            branches.append(f"when regexp_matches({nsn}, {_literal('^(?:' + metadata.leading_digits + ')')}) "
                            f"then {valid}")  # fmt: skip
        else:
            branches.append(f"when {valid} then true")
    return f"(case {' '.join(branches)} else false end)" if branches else "false"


def _strippable(metadata: phonenumbers.PhoneMetadata | None) -> bool:
    """Whether `_strip_sql` can follow the region's national prefix rule: a transform rule (Japan's, Brazil's)
    applies only when the pattern's last group takes part in the match, and such numbers are left to the reference."""
    if metadata is None:
        return False
    if not metadata.national_prefix_transform_rule:
        return True
    return bool(metadata.national_prefix_for_parsing) and re.compile(metadata.national_prefix_for_parsing).groups > 0


def _strip_sql(metadata: phonenumbers.PhoneMetadata) -> str:
    """SQL for the national number left after `phonenumbers`' `_maybe_strip_national_prefix_carrier_code`, assuming
    the result is then found valid; NULL when the length check that follows would keep the prefix, or when the
    region's transform rule would rewrite the number."""
    if not metadata.national_prefix_for_parsing:
        return "rest"
    pattern = _literal("^(?:" + metadata.national_prefix_for_parsing + ")")
    prefix = f"regexp_extract(rest, {pattern})"
    general = metadata.general_desc
    possible = ", ".join(str(n) for n in general.possible_length if n > 0) or "-1"
    local = ", ".join(str(n) for n in general.possible_length_local_only) or "-1"
    left = f"rest[length({prefix}) + 1:]"
    transformed = ""
    if metadata.national_prefix_transform_rule:
        last = re.compile(metadata.national_prefix_for_parsing).groups
        transformed = f"when regexp_extract(rest, {pattern}, {last}) <> '' then null "
    return (
        f"case when {prefix} = '' then rest {transformed}"
        f"when length({left}) in ({possible}) and length({left}) not in ({local}) then {left} end"
    )


def e164_sql(pairs: str, regions: Iterable[str], codes: Iterable[int]) -> str:
    """A query over table `pairs` (text, region) giving (text, region, e164), with e164 NULL when not sure.

    `regions` are the default regions of the numbers written without a '+' that this query handles and `codes` the
    country codes after a '+' it handles; other numbers get NULL, as do regions whose national prefix needs a
    transform rule (Japan's, Brazil's, ...).
    """
    national: dict[str, phonenumbers.PhoneMetadata] = {}
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.strip().upper(), None)
        if _strippable(metadata):
            national[region.strip().upper()] = metadata
    international: dict[int, phonenumbers.PhoneMetadata] = {}
    for code in codes:
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            main = phonenumbers.region_code_for_country_code(code)
            metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, main)
            if _strippable(metadata):
                international[code] = metadata
    all_codes = sorted(set(international) | {metadata.country_code for metadata in national.values()})
    if not all_codes:
        return f"select text, region, null::varchar as e164 from {pairs}"
    # After a '+' the country code is the first 1, 2 or 3 digits that form a known code, as `phonenumbers` reads it.
    known = {n: sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if len(str(c)) == n) for n in (1, 2, 3)}
    code_after_plus = " ".join(
        f"when left(digits, {n}) in ({', '.join(map(_literal, known[n]))}) then left(digits, {n})::integer"
        for n in (1, 2, 3)
    )
    # Without a '+': the default region's code. Digits that start with the region's international prefix ("00",
    # "011") or with its country code are left to `phonenumbers`, which may read a country code there.
    national_code = " ".join(
        f"when {_literal(region)} then case when regexp_matches(digits, "
        f"{_literal('^(?:' + (metadata.international_prefix or 'x') + ')')}) "
        f"or starts_with(digits, '{metadata.country_code}') then null else {metadata.country_code} end"
        for region, metadata in national.items()
    )
    strip_international = " ".join(f"when {code} then {_strip_sql(m)}" for code, m in international.items())
    strip_national = " ".join(f"when {_literal(region)} then {_strip_sql(m)}" for region, m in national.items())
    valid = " ".join(f"when {code} then {_valid_for_code(code, 'nsn')}" for code in all_codes)
    return f"""
        with shaped as (
            select text, region, upper(trim(region)) as default_region,
                {_DIGITS} as digits, {_PLUS} as plus
            from {pairs}
            where length(text) <= 250 and regexp_matches(text, {_literal(_PLAIN)})
        ),
        coded as (
            select *,
                case when plus then case {code_after_plus or "when false then null"} end
                    else case default_region {national_code or "when null then null"} end end as code
            from shaped
        ),
        split as (
            select *, case when plus then digits[length(code::varchar) + 1:] else digits end as rest
            from coded
            where code is not null
        ),
        stripped as (
            select text, region, code,
                case when plus then case code {strip_international or "when null then null"} end
                    else case default_region {strip_national or "when null then null"} end end as nsn
            from split
        ),
        answered as (
            select text, region, '+' || code || nsn as e164
            from stripped
            where length(nsn) between 2 and 17 and (case code {valid} else false end)
        )
        select p.text, p.region, a.e164 from {pairs} p left join answered a using (text, region)
    """


def e164_sql_for(con: duckdb.DuckDBPyConnection, pairs: str) -> str:
    """`e164_sql` for the default regions and the country codes (after a '+') that occur in table `pairs`."""
    regions = [
        region for (region,) in con.execute(f"select distinct region from {pairs} where region <> ''").fetchall()
    ]
    prefixes = con.execute(
        f"select distinct left(digits, n) from (select {_DIGITS} as digits from {pairs} where {_PLUS}), "
        "range(1, 4) t(n) where length(digits) >= n and left(digits, 1) <> '0'"
    ).fetchall()
    codes = [int(prefix) for (prefix,) in prefixes if int(prefix) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    return e164_sql(pairs, regions, codes)
