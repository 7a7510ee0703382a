"""Salesforce-style record ids, made vectorized.

Real exports carry 18-character case-insensitive ids: a 3-character key prefix naming the object, the org's pod,
a base-62 counter, and a 3-character checksum that encodes which of the first 15 characters are upper case.
Downstream code must treat ids as opaque strings, so the simulator writes them exactly as Salesforce does.
"""

from __future__ import annotations

import numpy as np

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "User": "005",
    "UserRole": "00E",
    "Task": "00T",
    "Event": "00U",
}
_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_CHECKSUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)
_POD = b"8d0000"  # instance and reserved characters, constant within one org
_COUNTER_DIGITS = 6


def salesforce_ids(sobject: str, numbers: np.ndarray) -> np.ndarray:
    """18-character ids for the given record numbers (distinct numbers give distinct ids)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= 62**_COUNTER_DIGITS):
        raise ValueError("record numbers must be in [0, 62**6)")
    chars = np.empty((numbers.size, 18), dtype=np.uint8)
    chars[:, 0:3] = np.frombuffer(KEY_PREFIXES[sobject].encode(), dtype=np.uint8)
    chars[:, 3:9] = np.frombuffer(_POD, dtype=np.uint8)
    rest = numbers.copy()
    for position in range(14, 8, -1):
        chars[:, position] = _BASE62[rest % 62]
        rest //= 62
    is_upper = (chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    for block in range(3):
        chars[:, 15 + block] = _CHECKSUM[is_upper[:, block * 5 : block * 5 + 5] @ weights]
    return chars.view("S18").ravel().astype(str)
