"""Names of people and companies, by the language of the country they are in.

Small embedded lists keep generation fast and deterministic; combinations give enough variety for millions of rows.
"""

from __future__ import annotations

import numpy as np

# fmt: off
FIRST_NAMES = {
    "en": [
        "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
        "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher",
        "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily",
        "Andrew", "Michelle", "Joshua", "Amanda", "Kevin", "Melissa", "Brian", "Deborah", "Priya", "Wei", "Aisha",
        "Mateo", "Sofia", "Liam", "Chloe", "Olivia", "Noah", "Grace", "Ethan", "Zoe", "Lucas", "Hannah", "Owen", "Ava"
    ],
    "de": [
        "Lukas", "Anna", "Leon", "Lea", "Finn", "Lena", "Jonas", "Hannah", "Paul", "Laura", "Felix", "Julia",
        "Maximilian", "Sarah", "Tim", "Lisa", "Jan", "Katharina", "Niklas", "Johanna", "Tobias", "Marie", "Florian",
        "Sophie", "Moritz", "Clara", "Jürgen", "Anja", "Stefan", "Sabine"
    ],
    "fr": [
        "Lucas", "Emma", "Hugo", "Louise", "Louis", "Jade", "Gabriel", "Alice", "Arthur", "Chloé", "Jules", "Léa",
        "Raphaël", "Manon", "Adam", "Camille", "Paul", "Inès", "Théo", "Sarah", "Nathan", "Juliette", "Antoine",
        "Margaux", "Hélène", "François", "Amélie", "Céline", "Étienne", "Noémie"
    ],
    "nl": [
        "Daan", "Emma", "Sem", "Julia", "Lucas", "Mila", "Levi", "Sophie", "Finn", "Tess", "Milan", "Sara", "Jesse",
        "Anna", "Bram", "Noor", "Thijs", "Fenna", "Ruben", "Lotte"
    ],
    "ja": [
        "Haruto", "Yui", "Sota", "Hina", "Yuto", "Aoi", "Riku", "Mei", "Hayato", "Sakura", "Kenji", "Yuki", "Takumi",
        "Aiko", "Daiki", "Emi", "Ren", "Nanami", "Kaito", "Rina"
    ],
}
LAST_NAMES = {
    "en": [
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
        "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
        "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
        "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "O'Brien", "Patel", "Chen", "Kim", "Singh",
        "Murphy", "Kelly", "Cooper", "Reed", "Cook"
    ],
    "de": [
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun",
        "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann"
    ],
    "fr": [
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
        "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard",
        "André", "Lefebvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez"
    ],
    "nl": [
        "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit", "Meijer",
        "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer"
    ],
    "ja": [
        "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato",
        "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue", "Kimura", "Hayashi", "Shimizu", "Yamazaki"
    ],
}
# fmt: on
LANGUAGE_OF_COUNTRY = {
    "US": "en",
    "CA": "en",
    "GB": "en",
    "AU": "en",
    "SG": "en",
    "DE": "de",
    "FR": "fr",
    "NL": "nl",
    "JP": "ja",
}
# fmt: off
_COMPANY_WORDS = [
    "Acme", "Apex", "Blue", "Bright", "Cedar", "Clear", "Cobalt", "Crest", "Delta", "Echo", "Ember", "Falcon", "Fern",
    "Forge", "Granite", "Harbor", "Helix", "Horizon", "Iron", "Juniper", "Keystone", "Lumen", "Maple", "Meridian",
    "Nimbus", "North", "Nova", "Oak", "Orbit", "Pine", "Pioneer", "Prism", "Quantum", "Quartz", "Raven", "Ridge",
    "River", "Sage", "Silver", "Summit", "Swift", "Terra", "Tidal", "Union", "Vector", "Vertex", "Willow", "Zenith"
]
_COMPANY_KINDS = [
    "Systems", "Labs", "Logistics", "Health", "Foods", "Energy", "Analytics", "Partners", "Robotics", "Media",
    "Capital", "Works", "Networks", "Retail", "Motors", "Software", "Bank", "Insurance", "Pharma", "Learning"
]
# fmt: on
_COMPANY_SUFFIX = {
    "US": ("Inc.", "LLC", "Corp."),
    "CA": ("Inc.", "Ltd."),
    "GB": ("Ltd", "plc", "Group"),
    "AU": ("Pty Ltd", "Group"),
    "SG": ("Pte. Ltd.",),
    "DE": ("GmbH", "AG", "GmbH & Co. KG"),
    "FR": ("SA", "SAS"),
    "NL": ("B.V.", "N.V."),
    "JP": ("K.K.", "Co., Ltd."),
}
_TLD = {
    "US": "com",
    "CA": "ca",
    "GB": "co.uk",
    "AU": "com.au",
    "SG": "sg",
    "DE": "de",
    "FR": "fr",
    "NL": "nl",
    "JP": "jp",
}
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ê": "e", "É": "E", "à": "a"})


def person_names(countries: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """First and last names typical of each row's country."""
    first = np.empty(len(countries), dtype=object)
    last = np.empty(len(countries), dtype=object)
    languages = np.array([LANGUAGE_OF_COUNTRY[c] for c in np.unique(countries)])
    draws_first = rng.random(len(countries))
    draws_last = rng.random(len(countries))
    for country, language in zip(np.unique(countries), languages, strict=True):
        mask = countries == country
        firsts = np.array(FIRST_NAMES[language], dtype=object)
        lasts = np.array(LAST_NAMES[language], dtype=object)
        first[mask] = firsts[(draws_first[mask] * len(firsts)).astype(int)]
        last[mask] = lasts[(draws_last[mask] * len(lasts)).astype(int)]
    return first, last


def email_local_part(first: np.ndarray, last: np.ndarray, style: np.ndarray) -> np.ndarray:
    """`first.last`, `flast` or `first` style mailboxes, accents folded to ASCII as mail systems do."""
    out = np.empty(len(first), dtype=object)
    for i, (f, s, k) in enumerate(zip(first, last, style, strict=True)):
        f_ascii = f.translate(_ASCII).lower().replace("'", "")
        l_ascii = s.translate(_ASCII).lower().replace("'", "").replace(" ", "")
        out[i] = (f"{f_ascii}.{l_ascii}", f"{f_ascii[0]}{l_ascii}", f"{f_ascii}{l_ascii[:1]}")[k]
    return out


def company_names(countries: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Company names and unique web domains (a counter disambiguates repeated names)."""
    n = len(countries)
    word = np.array(_COMPANY_WORDS, dtype=object)[rng.integers(0, len(_COMPANY_WORDS), n)]
    kind = np.array(_COMPANY_KINDS, dtype=object)[rng.integers(0, len(_COMPANY_KINDS), n)]
    suffix_pick = rng.random(n)
    names = np.empty(n, dtype=object)
    domains = np.empty(n, dtype=object)
    seen: dict[str, int] = {}
    for i in range(n):
        suffixes = _COMPANY_SUFFIX[countries[i]]
        base = f"{word[i]} {kind[i]}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        label = base if count == 0 else f"{base} {count + 1}"
        names[i] = f"{label} {suffixes[int(suffix_pick[i] * len(suffixes))]}"
        slug = f"{word[i]}{kind[i]}".lower() + ("" if count == 0 else str(count + 1))
        domains[i] = f"{slug}.{_TLD[countries[i]]}"
    return names, domains
