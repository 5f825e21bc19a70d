"""pcapan.flow.table: uids."""

from __future__ import annotations

import hashlib
import random

from pcapan.flow.table import UID_ALPHABET, uid_from_bytes


def _uid_by_definition(material: bytes) -> str:
    # The uid as documented: "C" and the 96-bit BLAKE2b digest's 17 base-62 digits, least
    # significant first, one division per digit.
    n = int.from_bytes(hashlib.blake2b(material, digest_size=12).digest(), "big")
    digits = []
    for _ in range(17):
        n, r = divmod(n, 62)
        digits.append(UID_ALPHABET[r])
    return "C" + "".join(digits)


def test_uid_digits_match_the_definition() -> None:
    rng = random.Random(14)
    materials = [rng.randbytes(rng.randrange(0, 64)) for _ in range(5000)]
    # and the material of a real uid (make_uid's format)
    materials.append(b"4|\n\x00\x00\x01|40000|\n\x00\x00\x02|80|1700000000123456789")
    for m in materials:
        uid = uid_from_bytes(m)
        assert uid == _uid_by_definition(m)
        assert len(uid) == 18 and uid[0] == "C"
