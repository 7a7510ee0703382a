"""Unique, valid phone numbers for the simulated org, written the way CRM users write them.

`phonenumbers` is consulted only to build templates, once per process: a template is a national-number prefix
(an area code or mobile block), the first digits allowed after it, and its national, international and E.164
layouts. Numbers are then made with numpy: the free digits come from a seeded bijection of a per-template counter,
so numbers never repeat and no lookup table is needed.

Validity is read from phonenumbers' own patterns rather than sampled, because sampling misses narrow ranges:
German 12-digit numbers starting 17799 are valid (voicemail) while other 12-digit 177 numbers are not, a range
that a dozen random samples per template usually miss. The patterns use a small regex subset, so whether some or
every number of a given prefix and length matches can be worked out exactly (see `_ends`). phonenumbers itself
still checks a spread of sample numbers per template, which is also how the layouts are verified.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

COUNTRIES = ("US", "CA", "GB", "DE", "FR", "NL", "AU", "SG", "JP")
KINDS = ("fixed", "mobile")
STYLES = ("national", "international", "e164")
STYLE_SHARES = (0.70, 0.22, 0.08)

_FORMATS = (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164)
_ACCEPTED_TYPES = {
    "fixed": {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    "mobile": {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
}
_KIND_DESCRIPTIONS = {"fixed": "fixed_line", "mobile": "mobile"}
# The types phonenumbers tries before fixed line and mobile; a number matching one of them is that type instead.
_EARLIER_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")


@dataclass(frozen=True)
class _Area:
    """Candidate prefixes: leading digits of the national significant number (area code, mobile block)."""

    country: str
    kinds: tuple[str, ...]
    national_length: int  # digits in the national significant number
    first_digits: str  # candidates for the digit after the prefix; only those that keep every number valid are used
    prefixes: str


# Real, busy area codes and mobile blocks so the data looks like a real customer base. NANPA numbers are
# fixed-line-or-mobile in phonenumbers, so one template serves both kinds and its counter keeps them distinct.
_AREAS = (
    _Area(
        "US",
        ("fixed", "mobile"),
        10,
        "23456789",
        "212 646 718 917 415 650 408 213 310 312 773 617 202 206 512 214 713 305 404 303 602 612 704 919",
    ),
    _Area("CA", ("fixed", "mobile"), 10, "23456789", "416 647 604 778 514 403 613 905"),
    _Area("GB", ("fixed",), 10, "378", "20"),
    _Area("GB", ("fixed",), 10, "23456789", "161 121 131 141 151 117"),
    _Area("GB", ("mobile",), 10, "0123456789", "7711 7723 7747 7768 7801 7812 7846 7877 7900 7912 7955 7412"),
    _Area("DE", ("fixed",), 10, "23456789", "30 40 89 69 221 211 711 341"),
    _Area("DE", ("mobile",), 11, "123456789", "151 152 157 160 162 170 171 172 176 177 179"),
    _Area("FR", ("fixed",), 9, "0123456789", "14 15 17 47 49 32 55 24"),
    _Area("FR", ("mobile",), 9, "0123456789", "61 62 64 65 66 67 68 76 77 78"),
    _Area("NL", ("fixed",), 9, "23456789", "10 20 30 40 50 70"),
    _Area("NL", ("mobile",), 9, "0123456789", "61 62 63 64 65"),
    _Area("AU", ("fixed",), 9, "0123456789", "29 28 26 39 38 73 89 88"),
    _Area("AU", ("mobile",), 9, "0123456789", "40 41 42 43 45 47 48"),
    _Area("SG", ("fixed",), 8, "0123456789", "61 62 63 64 65 67"),
    _Area("SG", ("mobile",), 8, "0123456789", "81 82 83 84 85 87 88 90 91 92 93 96 97 98"),
    _Area("JP", ("fixed",), 9, "23456789", "3 6 52 45 75 92 11 78"),
    _Area("JP", ("mobile",), 10, "123456789", "90 80 70"),
)


# --- Reading phonenumbers' patterns ------------------------------------------------------------------------------
#
# The national number patterns use digits, [classes] with ranges, \d, (?:groups), | and the quantifiers ? and
# {m,n}; `_parse_pattern` refuses anything else. A parsed pattern is a tree of tuples:
#   ("class", digits) | ("sequence", [nodes]) | ("alternatives", [nodes]) | ("repeat", node, low, high)

_Node = tuple
_ALL_DIGITS = frozenset("0123456789")
_LONGEST = 20  # phonenumbers rejects national numbers longer than 17 digits


def _parse_alternatives(pattern: str, position: int) -> tuple[_Node, int]:
    branches = []
    while True:
        branch, position = _parse_sequence(pattern, position)
        branches.append(branch)
        if position < len(pattern) and pattern[position] == "|":
            position += 1
            continue
        return (branches[0] if len(branches) == 1 else ("alternatives", branches)), position


def _parse_sequence(pattern: str, position: int) -> tuple[_Node, int]:
    items = []
    while position < len(pattern) and pattern[position] not in "|)":
        atom, position = _parse_atom(pattern, position)
        if position < len(pattern) and pattern[position] == "?":
            atom, position = ("repeat", atom, 0, 1), position + 1
        elif position < len(pattern) and pattern[position] == "{":
            end = pattern.index("}", position)
            low, comma, high = pattern[position + 1 : end].partition(",")
            bounds = (int(low), int(high) if high else _LONGEST) if comma else (int(low), int(low))
            atom, position = ("repeat", atom, *bounds), end + 1
        items.append(atom)
    return ("sequence", items), position


def _parse_atom(pattern: str, position: int) -> tuple[_Node, int]:
    character = pattern[position]
    if character == "(":
        position += 3 if pattern.startswith("(?:", position) else 1
        node, position = _parse_alternatives(pattern, position)
        if position >= len(pattern) or pattern[position] != ")":
            raise ValueError(f"unbalanced group in {pattern!r}")
        return node, position + 1
    if character == "[":
        end = pattern.index("]", position)
        body, digits, index = pattern[position + 1 : end], set(), 0
        while index < len(body):
            if body.startswith("\\d", index):
                digits |= _ALL_DIGITS
                index += 2
            elif index + 2 < len(body) and body[index + 1] == "-" and body[index].isdigit():
                digits |= {chr(code) for code in range(ord(body[index]), ord(body[index + 2]) + 1)}
                index += 3
            elif body[index].isdigit():
                digits.add(body[index])
                index += 1
            else:
                raise ValueError(f"unsupported character class {body!r} in {pattern!r}")
        return ("class", frozenset(digits)), end + 1
    if pattern.startswith("\\d", position):
        return ("class", _ALL_DIGITS), position + 2
    if character.isdigit():
        return ("class", frozenset(character)), position + 1
    raise ValueError(f"unsupported regex syntax at {position} in {pattern!r}")


@functools.cache
def _parse_pattern(pattern: str) -> _Node:
    node, end = _parse_alternatives(pattern, 0)
    if end != len(pattern):
        raise ValueError(f"unsupported regex syntax at {end} in {pattern!r}")
    return node


def _ends(node: _Node, prefix: str, starts: frozenset[int], every_digit: bool) -> frozenset[int]:
    """Where a match of `node` begun at any of `starts` can end, in numbers that start with `prefix`.

    Positions inside the prefix must hold the prefix's digit; positions past it may hold any digit. Because free
    positions are independent, a length is reachable exactly when some number of that length matches. With
    `every_digit`, free positions must accept all ten digits, so a reachable length means every number of that
    length matches (along one path; a pattern that splits 0-9 across branches is judged too strictly, never too
    loosely).
    """
    if not starts:
        return starts
    kind = node[0]
    if kind == "class":
        digits = node[1]
        matches_free_digit = len(digits) == 10 or not every_digit
        return frozenset(
            start + 1
            for start in starts
            if start < _LONGEST and (prefix[start] in digits if start < len(prefix) else matches_free_digit)
        )
    if kind == "sequence":
        for item in node[1]:
            starts = _ends(item, prefix, starts, every_digit)
        return starts
    if kind == "alternatives":
        return frozenset().union(*(_ends(branch, prefix, starts, every_digit) for branch in node[1]))
    _, item, low, high = node
    reached = starts if low == 0 else frozenset()
    for count in range(1, high + 1):
        starts = _ends(item, prefix, starts, every_digit)
        if not starts:
            break
        if count >= low:
            reached |= starts
    return reached


@functools.cache
def _pattern_ends(pattern: str, prefix: str, every_digit: bool) -> frozenset[int]:
    return _ends(_parse_pattern(pattern), prefix, frozenset({0}), every_digit)


def _lengths(description: phonenumbers.PhoneNumberDesc | None, prefix: str) -> frozenset[int]:
    """Lengths at which some national number starting with `prefix` matches `description`."""
    if description is None or not description.national_number_pattern:
        return frozenset()
    ends = {end for end in _pattern_ends(description.national_number_pattern, prefix, False) if end >= len(prefix)}
    return frozenset(ends & set(description.possible_length)) if description.possible_length else frozenset(ends)


def _always_matches(description: phonenumbers.PhoneNumberDesc | None, prefix: str, length: int) -> bool:
    """Whether every national number of `length` digits starting with `prefix` matches `description`."""
    if description is None or not description.national_number_pattern:
        return False
    if description.possible_length and length not in description.possible_length:
        return False
    return length in _pattern_ends(description.national_number_pattern, prefix, True)


def _always_valid(country: str, kinds: tuple[str, ...], prefix: str, length: int) -> bool:
    """Whether every number of `length` digits starting with `prefix` is valid in `country` and of `kinds`.

    Mirrors phonenumbers' type resolution: the general pattern must match, no earlier type (premium, toll free...)
    may match, and the kind's own pattern must; fixed-line-or-mobile counts as either kind.
    """
    metadata = PhoneMetadata.metadata_for_region(country)
    return (
        _always_matches(metadata.general_desc, prefix, length)
        and not any(length in _lengths(getattr(metadata, name), prefix) for name in _EARLIER_TYPES)
        and all(_always_matches(getattr(metadata, _KIND_DESCRIPTIONS[kind]), prefix, length) for kind in kinds)
        and not _claimed_by_earlier_region(country, prefix, length)
    )


def _claimed_by_earlier_region(country: str, prefix: str, length: int) -> bool:
    """Whether phonenumbers could attribute such a number to a region listed before `country` for its code.

    is_valid_number checks a number against the first region that claims it (by leading digits, or by being valid
    there), so a Canadian number also claimed by, say, Jamaica would not count as valid.
    """
    for region in phonenumbers.region_codes_for_country_code(phonenumbers.country_code_for_region(country)):
        if region == country:
            return False
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata.leading_digits:
            if _pattern_ends(metadata.leading_digits, prefix, False):
                return True
        elif _could_be_valid_in(metadata, prefix, length):
            return True
    return False


def _could_be_valid_in(metadata: PhoneMetadata, prefix: str, length: int) -> bool:
    if length not in _lengths(metadata.general_desc, prefix):
        return False
    names = (*_EARLIER_TYPES, "fixed_line", "mobile")
    return any(length in _lengths(getattr(metadata, name), prefix) for name in names)


def _could_be_valid(country_code: int, prefix: str, length: int) -> bool:
    """Whether some number of `length` digits starting with `prefix` is valid in a region using `country_code`."""
    return any(
        _could_be_valid_in(PhoneMetadata.metadata_for_region(region), prefix, length)
        for region in phonenumbers.region_codes_for_country_code(country_code)
    )


# --- Templates ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """One written style of a template: the formatted example, and where the free digits go in it."""

    pattern: np.ndarray  # uint32 code points, so rows view as numpy unicode without a conversion
    slots: np.ndarray  # positions of the free digits, in order
    trunk: str  # digits written before the national number: "0" in most national formats

    @functools.cached_property
    def runs(self) -> tuple[tuple[int, int, int], ...]:
        """(position in text, position in fill, length) of each unbroken run of free digits."""
        breaks = np.flatnonzero(np.diff(self.slots) != 1) + 1
        starts = np.concatenate([[0], breaks])
        lengths = np.diff(np.concatenate([starts, [len(self.slots)]]))
        return tuple(
            (int(self.slots[start]), int(start), int(length)) for start, length in zip(starts, lengths, strict=True)
        )

    @property
    def width(self) -> int:
        return len(self.pattern)

    def place(self, characters: np.ndarray, rows: np.ndarray, fill: np.ndarray) -> None:
        """Write numbers with free digits `fill` (one row of 0-9 per number) into `characters[rows]`."""
        block = np.empty((len(rows), self.width), dtype=np.uint32)
        block[:] = self.pattern
        codes = fill + np.uint8(ord("0"))
        for text_start, fill_start, length in self.runs:  # slices: twice as fast as indexing with `slots`
            block[:, text_start : text_start + length] = codes[:, fill_start : fill_start + length]
        characters[rows, : self.width] = block

    def write(self, fill: np.ndarray) -> np.ndarray:
        characters = np.zeros((len(fill), self.width), dtype=np.uint32)
        self.place(characters, np.arange(len(fill)), fill)
        return _text(characters)


@dataclass(frozen=True)
class _Template:
    """Numbers `prefix` + one of `first_digits` + `fill_length - 1` free digits, all valid for `kinds`."""

    country: str
    kinds: tuple[str, ...]
    country_code: int
    prefix: str
    first_digits: np.ndarray  # uint8
    fill_length: int
    layouts: tuple[_Layout, ...]  # in STYLES order

    @property
    def national_length(self) -> int:
        return len(self.prefix) + self.fill_length

    @property
    def rest_modulus(self) -> int:
        return 10 ** (self.fill_length - 1)

    @property
    def capacity(self) -> int:
        return len(self.first_digits) * self.rest_modulus

    def sample_fill(self, rng: np.random.Generator, size: int) -> np.ndarray:
        fill = rng.integers(0, 10, size=(size, self.fill_length), dtype=np.uint8)
        fill[:, 0] = rng.choice(self.first_digits, size=size)
        return fill

    def numbers(self, fills: np.ndarray) -> list[phonenumbers.PhoneNumber]:
        return [
            phonenumbers.PhoneNumber(country_code=self.country_code, national_number=int(self.prefix + digits))
            for digits in _text(fills + ord("0")).tolist()
        ]


def _text(characters: np.ndarray) -> np.ndarray:
    """Numpy unicode strings from a matrix of code points; zeros at the end of a row are not part of the string."""
    width = characters.shape[1]
    return np.ascontiguousarray(characters, dtype=np.uint32).view(f"U{width}")[:, 0]


def _characters(text: np.ndarray, width: int) -> np.ndarray:
    return np.ascontiguousarray(text.astype(f"U{width}")).view(np.uint32).reshape(len(text), width)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative `values`, most significant first, zero-padded to `width` columns."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def _layout(number: phonenumbers.PhoneNumber, style_format: int, national_length: int, fill_length: int) -> _Layout:
    text = phonenumbers.format_number(number, style_format)
    digit_positions = [position for position, character in enumerate(text) if character.isdigit()]
    digits = "".join(text[position] for position in digit_positions)
    trunk = digits[: len(digits) - national_length] if style_format == PhoneNumberFormat.NATIONAL else ""
    pattern = np.array([ord(character) for character in text], dtype=np.uint32)
    return _Layout(pattern, np.array(digit_positions[-fill_length:]), trunk)


def _judged_valid(template: _Template, fills: np.ndarray) -> np.ndarray:
    """phonenumbers' own verdict per sample number: valid, in the template's country, and of its kinds.

    A cross-check of `_always_valid`; number_type is UNKNOWN for an invalid number and is judged in the region
    region_code_for_number picks, which is what is_valid_number does too.
    """
    verdicts = []
    for number in template.numbers(fills):
        number_type = phonenumbers.number_type(number)
        verdicts.append(
            phonenumbers.region_code_for_number(number) == template.country
            and all(number_type in _ACCEPTED_TYPES[kind] for kind in template.kinds)
        )
    return np.array(verdicts, dtype=bool)


def _written_as_laid_out(template: _Template, fills: np.ndarray) -> np.ndarray:
    """Per sample number, whether phonenumbers writes it (nationally, internationally) the way the layouts do.

    E.164 needs no check: it is "+", the country code and the national number, whatever the digits.
    """
    numbers = template.numbers(fills)
    matches = np.ones(len(fills), dtype=bool)
    for style_format, layout in zip(_FORMATS[:2], template.layouts[:2], strict=True):
        written = layout.write(fills).tolist()
        matches &= [
            phonenumbers.format_number(number, style_format) == text
            for number, text in zip(numbers, written, strict=True)
        ]
    return matches


def _build_template(area: _Area, prefix: str) -> _Template | None:
    """The template for `prefix` with the first digits after which every number is valid and written alike.

    phonenumbers checks one sample per first digit, and the layouts on ten more in which every later position
    takes every digit once (grouping can depend on digits past the prefix). None if no first digit passes, or if
    a layout does not fit a sample.
    """
    country_code = phonenumbers.country_code_for_region(area.country)
    fill_length = area.national_length - len(prefix)
    first_digits = [
        int(digit)
        for digit in area.first_digits
        if _always_valid(area.country, area.kinds, prefix + digit, area.national_length)
    ]
    if not first_digits:
        return None
    rng = np.random.default_rng([country_code, int(prefix), area.national_length])
    fills = rng.integers(0, 10, size=(len(first_digits), fill_length), dtype=np.uint8)
    fills[:, 0] = first_digits
    template = _Template(area.country, area.kinds, country_code, prefix, fills[:, 0], fill_length, ())
    example = template.numbers(fills[:1])[0]
    layouts = tuple(_layout(example, style_format, area.national_length, fill_length) for style_format in _FORMATS)
    template = dataclasses.replace(template, layouts=layouts)
    passing = _judged_valid(template, fills) & _written_as_laid_out(template, fills)
    if not passing.any():
        return None
    template = dataclasses.replace(template, first_digits=fills[passing, 0])

    sweep = np.empty((10, fill_length), dtype=np.uint8)
    sweep[:, 0] = np.resize(rng.permutation(template.first_digits), 10)
    sweep[:, 1:] = rng.permuted(np.tile(np.arange(10, dtype=np.uint8)[:, None], (1, fill_length - 1)), axis=0)
    if not _written_as_laid_out(template, sweep).all():
        return None
    number = template.numbers(sweep[:1])[0]
    if any(phonenumbers.parse(layout.write(sweep[:1])[0], area.country) != number for layout in layouts):
        return None
    return template


def _check_disjoint(templates: list[_Template]) -> None:
    """Templates of the same length must not share numbers; the candidate table is wrong if they do."""
    by_length: dict[tuple[int, int], list[str]] = {}
    for template in templates:
        prefixes = [f"{template.prefix}{digit}" for digit in template.first_digits]
        by_length.setdefault((template.country_code, template.national_length), []).extend(prefixes)
    for prefixes in by_length.values():
        for shorter, longer in itertools.pairwise(sorted(prefixes)):
            if longer.startswith(shorter):
                raise ValueError(f"phone templates overlap: {shorter} and {longer}")


@functools.cache
def _templates() -> tuple[_Template, ...]:
    templates = [
        template
        for area in _AREAS
        for prefix in area.prefixes.split()
        if (template := _build_template(area, prefix)) is not None
    ]
    _check_disjoint(templates)
    return tuple(templates)


def _random_unit(rng: np.random.Generator, modulus: int) -> int:
    """A random multiplier coprime to `modulus`, so multiplying by it permutes the residues."""
    if modulus == 1:
        return 0
    while math.gcd(candidate := int(rng.integers(1, modulus)), modulus) != 1:
        pass
    return candidate


class PhoneBook:
    """Hands out unique, valid phone numbers and writes them the way people in each country write them.

    Capacity is millions of numbers per country and kind (6 million Singapore landlines at the least, 192 million
    North American numbers); `draw` raises ValueError rather than repeat a number.
    """

    def __init__(self, seed: int) -> None:
        self._templates = _templates()
        self._pools = {
            (country, kind): np.array(
                [
                    index
                    for index, template in enumerate(self._templates)
                    if template.country == country and kind in template.kinds
                ],
                dtype=np.int64,
            )
            for country in COUNTRIES
            for kind in KINDS
        }
        self._issued = np.zeros(len(self._templates), dtype=np.int64)
        self._capacity = np.array([template.capacity for template in self._templates], dtype=np.int64)
        self._widths = [max(template.layouts[style].width for template in self._templates) for style in (0, 1, 2)]
        rng = np.random.default_rng(seed)
        self._permutations = [
            (
                _random_unit(rng, template.capacity),
                int(rng.integers(template.capacity)),
                _random_unit(rng, template.rest_modulus),
                int(rng.integers(template.rest_modulus)),
                int(rng.integers(template.rest_modulus)),
                int(rng.integers(len(template.first_digits))),
            )
            for template in self._templates
        ]

    def upper_half(self) -> PhoneBook:
        """A book with the same numbering that hands out numbers from halfway through each template's capacity on:
        none repeats this book's while this one has issued fewer than half of any template (500,000 at the least).
        A future of a world (future.py) draws its new numbers from it, so that the world's own stay as they were."""
        book = copy.copy(self)
        book._issued = np.maximum(self._issued, self._capacity // 2)
        return book

    def draw(
        self, countries: np.ndarray, rng: np.random.Generator, *, kind: str = "fixed"
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each ISO country code in `countries`, a new number as (E.164, written), two object arrays.

        Every number one PhoneBook returns is distinct from every other (across calls and kinds), valid, and
        `phonenumbers.parse(written, country)` gives back the E.164 number. `written` mixes styles the way CRM data
        does: ~70% national format, ~22% international, ~8% E.164. Choices use only `rng`, so the same seed and call
        sequence give the same output.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        countries = np.asarray(countries)
        if countries.dtype.kind != "U":
            countries = countries.astype(str)
        size = len(countries)
        groups = []
        for country in COUNTRIES:
            rows = np.flatnonzero(countries == country)
            if len(rows):
                groups += self._split_among_templates(country, kind, rows, rng)
        if sum(len(rows) for _, rows in groups) != size:
            unknown = sorted(set(countries.tolist()) - set(COUNTRIES))
            raise ValueError(f"no phone numbers for countries {unknown}; supported: {COUNTRIES}")
        style_of_row = np.searchsorted(np.cumsum(STYLE_SHARES[:-1]), rng.random(size), side="right")

        e164 = np.zeros((size, self._widths[2]), dtype=np.uint32)
        written = np.zeros((size, max(self._widths)), dtype=np.uint32)
        for template_index, rows in groups:
            template = self._templates[template_index]
            sequence = self._issued[template_index] + np.arange(len(rows), dtype=np.int64)
            self._issued[template_index] += len(rows)
            fill = self._fill(template_index, sequence)
            template.layouts[2].place(e164, rows, fill)
            styles = style_of_row[rows]
            for style, layout in enumerate(template.layouts):
                chosen = styles == style
                layout.place(written, rows[chosen], fill[chosen])
        return _text(e164).astype(object), _text(written).astype(object)

    def _split_among_templates(
        self, country: str, kind: str, rows: np.ndarray, rng: np.random.Generator
    ) -> list[tuple[int, np.ndarray]]:
        """(template, rows) pairs: uniform over the country's templates for `kind`, never past their capacity."""
        pool = self._pools[(country, kind)]
        remaining = self._capacity[pool] - self._issued[pool]
        if len(rows) > remaining.sum():
            raise ValueError(f"PhoneBook has only {remaining.sum()} {kind} numbers left for {country}")
        open_templates = remaining > 0
        counts = rng.multinomial(len(rows), open_templates / open_templates.sum())
        overflow = int(np.maximum(counts - remaining, 0).sum())
        if overflow:
            counts = np.minimum(counts, remaining)
            counts += rng.multivariate_hypergeometric(remaining - counts, overflow)
        labels = rng.permutation(np.repeat(np.arange(len(pool), dtype=np.int16), counts))
        # Rows stay in ascending order within each template: writing them into the output in random order was 10x
        # slower, and the slowest step of draw.
        chunks = np.split(rows[np.argsort(labels, kind="stable")], np.cumsum(counts)[:-1])
        return [(index, chunk) for index, chunk in zip(pool.tolist(), chunks, strict=True) if len(chunk)]

    def _fill(self, template_index: int, sequence: np.ndarray) -> np.ndarray:
        """Free digits for counter values `sequence`: a bijection, so distinct counters give distinct numbers.

        An affine map alone would space consecutive numbers evenly; reversing the digits and mixing the first digit
        with the rest (each step invertible) makes them look unrelated.
        """
        template = self._templates[template_index]
        scale, shift, rest_scale, rest_shift, rest_mix, first_mix = self._permutations[template_index]
        rest_width = template.fill_length - 1
        first, rest = np.divmod((scale * sequence + shift) % template.capacity, template.rest_modulus)
        reversed_rest = _digits(rest, rest_width)[:, ::-1] @ (10 ** np.arange(rest_width - 1, -1, -1, dtype=np.int64))
        rest = (rest_scale * reversed_rest + rest_shift + rest_mix * first) % template.rest_modulus
        first = (first + first_mix * rest) % len(template.first_digits)
        fill = np.empty((len(sequence), template.fill_length), dtype=np.uint8)
        fill[:, 0] = template.first_digits[first]
        fill[:, 1:] = _digits(rest, rest_width)
        return fill


# --- Invalid numbers for fault injection -----------------------------------------------------------------------

# What someone typing 0-9 by eye might put instead: O for 0, l for 1, and so on.
_LOOKALIKE_LETTERS = np.array([ord(letter) for letter in "OlZEASGTBg"], dtype=np.uint32)


def _random_slots(layout: _Layout, rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """One or two distinct free-digit positions per row (a column each), so corruption leaves the area code alone."""
    slot_count = len(layout.slots)
    first = rng.integers(slot_count, size=size)
    if count == 1:
        return layout.slots[first][:, None]
    second = (first + 1 + rng.integers(slot_count - 1, size=size)) % slot_count
    return layout.slots[np.stack([first, second], axis=1)]


def _delete_characters(characters: np.ndarray, positions: np.ndarray) -> np.ndarray:
    keep = np.ones(characters.shape, dtype=bool)
    keep[np.arange(len(characters))[:, None], positions] = False
    return characters[keep].reshape(len(characters), -1)


def _drop_digit(text: np.ndarray, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    return _text(_delete_characters(_characters(text, layout.width), _random_slots(layout, rng, len(text), 1)))


def _drop_two_digits(text: np.ndarray, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    return _text(_delete_characters(_characters(text, layout.width), _random_slots(layout, rng, len(text), 2)))


def _letter_typed(text: np.ndarray, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    # phonenumbers ignores a lone letter, so to it this is a dropped digit.
    characters = _characters(text, layout.width).copy()
    rows, positions = np.arange(len(text)), _random_slots(layout, rng, len(text), 1)[:, 0]
    characters[rows, positions] = _LOOKALIKE_LETTERS[characters[rows, positions] - ord("0")]
    return _text(characters)


def _digit_typed_twice(text: np.ndarray, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    characters = _characters(text, layout.width)
    positions = _random_slots(layout, rng, len(text), 1)
    columns = np.arange(layout.width + 1)[None, :]
    return _text(np.take_along_axis(characters, columns - (columns > positions), axis=1))


def _extension_junk(text: np.ndarray, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    # Three letters make phonenumbers read the text as a vanity number, so "ext" becomes three more digits.
    return np.strings.add(text, rng.choice(np.array([" ext", " ext.", " Ext", " EXT"]), size=len(text)))


def _cut_off(text: np.ndarray, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    return np.strings.rstrip(np.strings.slice(text, 0, int(layout.slots[2])), " -")


def _pasted_twice(text: np.ndarray, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    return np.strings.add(np.strings.add(text, " / "), text)


def _cut_after_third_digit(text: np.ndarray) -> np.ndarray:
    """Text up to its third digit: at most three digits of national number, shorter than any valid one here."""
    width = max(1, int(np.strings.str_len(text).max(initial=0)))
    characters = _characters(text, width).copy()
    digits_so_far = np.cumsum((characters >= ord("0")) & (characters <= ord("9")), axis=1)
    characters[:, 1:][digits_so_far[:, :-1] >= 3] = 0
    return _text(characters)


@dataclass(frozen=True)
class _Corruption:
    apply: Callable[[np.ndarray, _Layout, np.random.Generator], np.ndarray]
    # Digits of the national number phonenumbers reads back, given the template's national length, its prefix
    # length, and the digits the style writes besides the national number (trunk "0", or the country code).
    corrupted_length: Callable[[int, int, int], int]


_CORRUPTIONS = (
    _Corruption(_drop_digit, lambda national, prefix, extra: national - 1),
    _Corruption(_drop_two_digits, lambda national, prefix, extra: national - 2),
    _Corruption(_letter_typed, lambda national, prefix, extra: national - 1),
    _Corruption(_digit_typed_twice, lambda national, prefix, extra: national + 1),
    _Corruption(_extension_junk, lambda national, prefix, extra: national + 3),
    _Corruption(_cut_off, lambda national, prefix, extra: prefix + 2),
    _Corruption(_pasted_twice, lambda national, prefix, extra: 2 * national + extra),
)
_PASTED_TWICE = len(_CORRUPTIONS) - 1


def _is_valid_text(text: str, country: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, country))
    except phonenumbers.NumberParseException:
        return False


@functools.cache
def _safe_corruptions(template_index: int) -> np.ndarray:
    """Indices of the corruptions that make every number of this template invalid, whichever style it is in.

    A corruption keeps the prefix and changes the length, so it is safe when no valid number of the new length
    starts with the prefix, in any region sharing the country code. National text is read both ways because
    phonenumbers keeps the trunk "0" when stripping it would leave an impossible number. One national and one
    international sample also go through phonenumbers, for anything parsing does that the patterns do not show.
    """
    template = _templates()[template_index]
    national, prefix, trunk = template.national_length, template.prefix, template.layouts[0].trunk
    rng = np.random.default_rng(template_index)
    layouts = template.layouts[:2]
    samples = [layout.write(template.sample_fill(rng, 1)) for layout in layouts]
    safe = []
    for index, corruption in enumerate(_CORRUPTIONS):
        national_text_length = corruption.corrupted_length(national, len(prefix), len(trunk))
        readings = [
            (prefix, corruption.corrupted_length(national, len(prefix), len(str(template.country_code)))),
            (prefix, national_text_length),
            (trunk + prefix, len(trunk) + national_text_length),
        ]
        if any(_could_be_valid(template.country_code, start, length) for start, length in readings):
            continue
        texts = [
            text
            for sample, layout in zip(samples, layouts, strict=True)
            for text in corruption.apply(sample, layout, rng).tolist()
        ]
        if not any(_is_valid_text(text, template.country) for text in texts):
            safe.append(index)
    return np.array(safe, dtype=np.int64)


@functools.cache
def _layouts_by_head() -> dict[tuple[int, str], list[tuple[int, int]]]:
    """(width, text before the first free digit) -> the (template, style) layouts that write numbers that way."""
    by_head: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for template_index, template in enumerate(_templates()):
        for style, layout in enumerate(template.layouts):
            head = "".join(map(chr, layout.pattern[: layout.slots[0]].tolist()))
            by_head.setdefault((layout.width, head), []).append((template_index, style))
    return by_head


def _conforms(template: _Template, style: int, characters: np.ndarray) -> np.ndarray:
    """Per row of `characters`, whether it is a number of `template` written in `style`."""
    layout = template.layouts[style]
    fixed = np.ones(layout.width, dtype=bool)
    fixed[layout.slots] = False
    free = characters[:, layout.slots].astype(np.int64) - ord("0")
    allowed_first = np.zeros(10, dtype=bool)
    allowed_first[template.first_digits] = True
    return (
        (characters[:, fixed] == layout.pattern[fixed]).all(axis=1)
        & ((free >= 0) & (free <= 9)).all(axis=1)
        & allowed_first[np.clip(free[:, 0], 0, 9)]
    )


def _identify(text: np.ndarray) -> np.ndarray:
    """(template, style) per row of text a PhoneBook could have written, (-1, -1) for any other text."""
    templates, by_head = _templates(), _layouts_by_head()
    found = np.full((len(text), 2), -1, dtype=np.int64)
    claims = np.zeros(len(text), dtype=np.int64)
    widths = np.strings.str_len(text)
    for width, head_length in sorted({(width, len(head)) for width, head in by_head}):
        rows = np.flatnonzero(widths == width)
        if not len(rows):
            continue
        heads, head_of_row = np.unique(np.strings.slice(text[rows], 0, head_length), return_inverse=True)
        for head_index, head in enumerate(heads.tolist()):
            if (width, head) not in by_head:
                continue
            candidates = rows[head_of_row == head_index]
            characters = _characters(text[candidates], width)
            for template_index, style in by_head[(width, head)]:
                conforming = candidates[_conforms(templates[template_index], style, characters)]
                found[conforming] = (template_index, style)
                claims[conforming] += 1
    found[claims != 1] = -1
    return found


def make_invalid(written: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Realistic invalid variants of PhoneBook-written numbers, for fault injection; an object array.

    A digit or two dropped, a letter typed for a digit, a digit typed twice, " ext" with no number, the number cut
    off after the area code, or the number pasted twice. Each row gets one of the corruptions that break every
    number of its template (see `_safe_corruptions`; German landlines, valid at many lengths, only get the last
    two), so every result fails `phonenumbers.is_valid_number` (or parsing) for its country. Text no PhoneBook
    wrote is cut off after its third digit, which no supported country accepts.
    """
    text = np.asarray(written).astype(str)
    corrupted = np.empty(len(text), dtype=object)
    found = _identify(text)
    unknown = found[:, 0] < 0
    if unknown.any():
        corrupted[unknown] = _cut_after_third_digit(text[unknown])
    known = np.flatnonzero(~unknown)
    keys = found[known, 0] * len(STYLES) + found[known, 1]
    order = np.argsort(keys, kind="stable")
    templates = _templates()
    for rows in np.split(known[order], np.flatnonzero(np.diff(keys[order])) + 1):
        if not len(rows):
            continue
        template_index, style = found[rows[0]].tolist()
        safe = _safe_corruptions(template_index)
        choice = safe[rng.integers(len(safe), size=len(rows))]
        layout = templates[template_index].layouts[style]
        for corruption_index in np.unique(choice).tolist():
            chosen = rows[choice == corruption_index]
            corrupted[chosen] = _CORRUPTIONS[corruption_index].apply(text[chosen], layout, rng)
    return corrupted
