import re

import duckdb
import numpy as np
import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from ingestion.phones import e164_sql, normalize_phone
from simulator import phones
from simulator.phones import COUNTRIES, PhoneBook, make_invalid


def _draw_everywhere(book: PhoneBook, rng: np.random.Generator, per_country: int) -> tuple[np.ndarray, ...]:
    """(countries, e164, written) for `per_country` fixed and as many mobile numbers in every country."""
    countries = np.repeat(np.array(COUNTRIES), per_country)
    fixed_e164, fixed_written = book.draw(countries, rng, kind="fixed")
    mobile_e164, mobile_written = book.draw(countries, rng, kind="mobile")
    return (
        np.concatenate([countries, countries]),
        np.concatenate([fixed_e164, mobile_e164]),
        np.concatenate([fixed_written, mobile_written]),
    )


def _is_valid(text: str, country: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, country))
    except phonenumbers.NumberParseException:
        return False


def _style(written: str) -> str:
    if not written.startswith("+"):
        return "national"
    return "international" if " " in written else "e164"


@pytest.fixture(scope="module")
def drawn() -> tuple[np.ndarray, ...]:
    return _draw_everywhere(PhoneBook(seed=11), np.random.default_rng(3), per_country=170)


def test_every_drawn_number_is_valid_and_parses_back_from_how_it_is_written(drawn):
    countries, e164, written = drawn
    assert len(e164) >= 3000
    for country, number, text in zip(countries, e164, written, strict=True):
        parsed = phonenumbers.parse(text, country)
        assert phonenumbers.is_valid_number(parsed), (country, text)
        assert phonenumbers.region_code_for_number(parsed) == country, (country, text)
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number, (country, text)


def test_mobile_numbers_are_mobile_and_fixed_numbers_are_fixed_line():
    book, rng = PhoneBook(seed=5), np.random.default_rng(5)
    countries = np.repeat(np.array(COUNTRIES), 40)
    types = phonenumbers.PhoneNumberType
    for kind, accepted in (("fixed", types.FIXED_LINE), ("mobile", types.MOBILE)):
        e164, _ = book.draw(countries, rng, kind=kind)
        for number in e164:
            assert phonenumbers.number_type(phonenumbers.parse(number)) in (accepted, types.FIXED_LINE_OR_MOBILE)


def test_numbers_are_unique_across_calls_and_kinds():
    book, rng = PhoneBook(seed=1), np.random.default_rng(1)
    countries = np.array(["US"] * 150_000 + ["SG"] * 20_000 + ["GB"] * 30_000)
    batches = [book.draw(countries, rng, kind=kind)[0] for kind in ("fixed", "mobile", "fixed")]
    numbers = np.concatenate(batches).tolist()
    assert len(set(numbers)) == len(numbers)


def test_the_same_seed_and_calls_give_the_same_numbers_and_another_seed_does_not():
    def run(seed: int) -> list[np.ndarray]:
        book, rng = PhoneBook(seed), np.random.default_rng(42)
        countries = np.array(["US", "DE", "JP", "GB", "US", "FR"] * 50)
        return [*book.draw(countries, rng), *book.draw(countries, rng, kind="mobile")]

    first, again, other = run(7), run(7), run(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_written_styles_are_mixed_about_70_22_8():
    _, written = PhoneBook(seed=2).draw(np.array(COUNTRIES * 3000), np.random.default_rng(2))
    styles = np.array([_style(text) for text in written])
    shares = {style: np.mean(styles == style) for style in ("national", "international", "e164")}
    assert shares == pytest.approx({"national": 0.70, "international": 0.22, "e164": 0.08}, abs=0.015)


def test_national_us_numbers_are_written_with_the_area_code_in_parentheses():
    _, written = PhoneBook(seed=3).draw(np.array(["US"] * 2000), np.random.default_rng(3))
    national = [text for text in written if _style(text) == "national"]
    assert len(national) > 1000
    assert all(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", text) for text in national)


def test_national_numbers_abroad_are_written_the_local_way():
    book, rng = PhoneBook(seed=4), np.random.default_rng(4)
    local_ways = {
        "GB": r"0\d{2,4} \d{3,4} ?\d{3,4}",
        "DE": r"0\d{2,4} \d{6,8}",
        "FR": r"0\d( \d\d){4}",
        "JP": r"0\d{1,2}-\d{3,4}-\d{4}",
    }
    for country, pattern in local_ways.items():
        _, written = book.draw(np.array([country] * 400), rng)
        assert all(re.fullmatch(pattern, text) for text in written if _style(text) == "national"), country


@pytest.mark.slow  # draws two million numbers
def test_two_million_numbers_fit_with_most_of_them_american():
    countries = np.array(["US"] * 1_200_000 + [country for country in COUNTRIES if country != "US"] * 100_000)
    e164, _ = PhoneBook(seed=9).draw(countries, np.random.default_rng(9))
    assert len(set(e164.tolist())) == len(countries)


def test_an_unsupported_country_is_refused():
    with pytest.raises(ValueError, match="XX"):
        PhoneBook(seed=1).draw(np.array(["US", "XX"]), np.random.default_rng(1))


def test_every_make_invalid_result_fails_validation_for_its_country(drawn):
    countries, _, written = drawn
    corrupted = make_invalid(written, np.random.default_rng(8))
    assert len(corrupted) == len(written)
    assert not [(country, text) for country, text in zip(countries, corrupted, strict=True) if _is_valid(text, country)]


def test_make_invalid_mixes_realistic_corruptions(drawn):
    _, _, written = drawn
    corrupted = make_invalid(written, np.random.default_rng(8))
    kinds = {
        "letter typed": sum(bool(re.search(r"\d[A-Za-z]|[A-Za-z]\d", text)) for text in corrupted),
        "extension junk": sum(text.lower().rstrip(".").endswith("ext") for text in corrupted),
        "pasted twice": sum(" / " in text for text in corrupted),
        "shorter": sum(len(new) < len(old) for new, old in zip(corrupted, written, strict=True)),
    }
    assert all(count > 50 for count in kinds.values()), kinds
    assert not any(new == old for new, old in zip(corrupted, written, strict=True))


def test_make_invalid_breaks_numbers_written_in_other_ways_too():
    written = np.array(["212.555.0199", "+44 (0)20 7946 0018", "030 123456", "0312345678"], dtype=object)
    countries = ["US", "GB", "DE", "JP"]
    assert all(_is_valid(text, country) for text, country in zip(written, countries, strict=True))
    corrupted = make_invalid(written, np.random.default_rng(0))
    assert not any(_is_valid(text, country) for text, country in zip(corrupted, countries, strict=True))


def test_make_invalid_is_deterministic_for_the_same_rng(drawn):
    _, _, written = drawn
    first = make_invalid(written, np.random.default_rng(21))
    again = make_invalid(written, np.random.default_rng(21))
    assert np.array_equal(first, again)


def test_no_german_mobile_is_corrupted_into_the_voicemail_range():
    # Regression: a digit typed twice in 0177 99... made a 12-digit voicemail number, which is valid; sampling
    # twelve corrupted numbers per template had not noticed.
    _, written = PhoneBook(seed=6).draw(np.array(["DE"] * 3000), np.random.default_rng(6), kind="mobile")
    corrupted = make_invalid(written, np.random.default_rng(6))
    assert not [text for text in corrupted if _is_valid(text, "DE")]


def test_australian_mobiles_stay_out_of_the_unassigned_483_range():
    # Regression: 0483 4... and 0483 5... are not valid mobile numbers; one turned up among 3,000 checked draws.
    e164, _ = PhoneBook(seed=7).draw(np.array(["AU"] * 20_000), np.random.default_rng(7), kind="mobile")
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(number)) for number in e164)


def test_the_pattern_reader_knows_which_lengths_a_prefix_can_reach():
    australian_mobile = r"4(?:79[01]|83[0-36-9]|9(?:5[0-3]|6[0-4]))\d{5}|4(?:[0-36]\d|4[047-9]|[58][0-24-9])\d{6}"
    assert phones._pattern_ends(australian_mobile, "4833", False) == {9}
    assert phones._pattern_ends(australian_mobile, "4834", False) == frozenset()
    assert phones._pattern_ends(r"(?:[34]0|[68]9)\d{3,5}", "30", False) == {5, 6, 7}
    # Every number matches only if no free digit is restricted: 483x is not all valid, 4833x is.
    assert 9 not in phones._pattern_ends(australian_mobile, "483", True)
    assert 9 in phones._pattern_ends(australian_mobile, "4833", True)


def _texts_everywhere() -> list[tuple[str, str]]:
    """(text, default region) pairs in every region's numbering plan: `phonenumbers`' example number of each type,
    written nationally, internationally and in E.164, plus near misses (a digit short or long, a national or
    international prefix added), each read with its own region, another region and no region."""
    formats = (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164)
    pairs = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
                     PhoneNumberType.VOIP, PhoneNumberType.PREMIUM_RATE):  # fmt: skip
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            for style in formats:
                text = phonenumbers.format_number(example, style)
                variants = [text, text[:-1], text + "7", "0" + text, "1 " + text, "00" + text.lstrip("+"),
                            "(" + text + ")", text + " x12", "\t" + text]  # fmt: skip
                pairs += [(variant, default) for variant in variants for default in (region, "US", "")]
    return sorted(set(pairs))


@pytest.mark.slow  # both parsers on every region's example numbers, in nine spellings each
def test_the_vectorized_e164_path_agrees_with_phonenumbers_or_leaves_the_number_to_it() -> None:
    pairs = _texts_everywhere()
    con = duckdb.connect()
    frame = pa.table({"text": [text for text, _ in pairs], "region": [region for _, region in pairs]})
    con.register("frame", frame)
    con.execute("create table pairs as select * from frame")
    regions = sorted({region for _, region in pairs if region})
    query = e164_sql("pairs", regions, sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
    fast = {(text, region): e164 for text, region, e164 in con.execute(query).fetchall()}
    assert len(fast) == len(pairs)
    reference = {(text, region): normalize_phone(text, region or None).e164 for text, region in pairs}
    disagreements = [
        (pair, e164, reference[pair]) for pair, e164 in fast.items() if e164 not in (None, reference[pair])
    ]
    assert disagreements == []
    # Valid numbers written plainly take the fast path; those after an international prefix ("00 44 ...") or
    # starting with the country code ("1 (441) ...") are left to `phonenumbers` by design.
    plain = [pair for pair in pairs if reference[pair] and re.fullmatch(r"(?!00|1 )\+?[0-9 ()-]+", pair[0])]
    assert sum(fast[pair] is not None for pair in plain) > 0.9 * len(plain)
