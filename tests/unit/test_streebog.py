"""Streebog-256 (GOST R 34.11-2012) against the examples of RFC 6986, section 10.

The RFC writes messages and digests as numbers, most significant byte first;
hash functions see byte strings least significant byte first, so both are
reversed here. The values are typed from the RFC (M1 is the ASCII digits
"0123...012", M2 the cp1251 text of the Igor Tale line).
"""

import pytest

from filter_plugins.x509 import streebog256

M1 = (
    "32313039383736353433323130393837363534333231303938373635343332"
    "3130393837363534333231303938373635343332313039383736353433323130"
)
M1_H256 = "00557be5e584fd52a449b16b0251d05d27f94ab76cbaa6da890b59d8ef1e159d"
M2 = (
    "fbe2e5f0eee3c820fbeafaebef20fffbf0e1e0f0f520e0ed20e8ece0ebe5f0f2"
    "f120fff0eeec20f120faf2fee5e2202ce8f6f3ede220e8e6eee1e8f0f2d1202c"
    "e8f0f2e5e220e5d1"
)
M2_H256 = "508f7e553c06501d749a66fc28c6cac0b005746d97537fa85d9e40904efed29d"


def rfc_bytes(number_hex: str) -> bytes:
    return bytes.fromhex(number_hex)[::-1]


def test_vectors_are_typed_as_in_the_rfc():
    # Guards the typing of the vectors themselves: both messages are known texts.
    assert rfc_bytes(M1) == b"012345678901234567890123456789012345678901234567890123456789012"
    assert rfc_bytes(M2).decode("cp1251").startswith("Се ветри, Стрибожи внуци")  # noqa: RUF001 (Cyrillic on purpose)
    assert len(rfc_bytes(M2)) == 72


@pytest.mark.parametrize(("message", "digest"), [(M1, M1_H256), (M2, M2_H256)])
def test_rfc_6986_examples(message, digest):
    assert streebog256(rfc_bytes(message)) == rfc_bytes(digest)


def test_digest_is_32_bytes_and_depends_on_every_byte():
    message = bytearray(rfc_bytes(M1))
    reference = streebog256(bytes(message))
    message[-1] ^= 1
    assert len(reference) == 32
    assert streebog256(bytes(message)) != reference
