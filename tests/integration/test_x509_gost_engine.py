"""x509_info / x509_require_gost2012 / Streebog-256 against certificates made by OpenSSL.

Every certificate is made here with the `openssl` CLI (the GOST engine for GOST
keys, through a private OPENSSL_CONF: tests/certs.py), and every expected
value is either typed from the standards (OIDs) or printed by OpenSSL itself
(serial, dates, subject, fingerprints, `openssl dgst -md_gost12_256`).
"""

from __future__ import annotations

import base64
import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from filter_plugins.x509 import streebog256, x509_info, x509_require_gost2012
from tests.certs import (
    CertFiles,
    gost_workdir,
    make_cert,
    openssl,
    openssl_streebog256,
    openssl_x509_field,
)
from tests.harness import ansible_playbook

SUBJECT = "/C=RU/O=ГБУЗ «МИАЦ», г. Москва/CN=esia_77/OGRN=1027700000000/INNLE=7700000000"  # noqa: RUF001

# key algorithm -> (public-key OID, signature OID, key size): from RFC 4491/9215 and the OID registry.
EXPECTED = {
    "gost2012_256": ("1.2.643.7.1.1.1.1", "1.2.643.7.1.1.3.2", 256),
    "gost2012_512": ("1.2.643.7.1.1.1.2", "1.2.643.7.1.1.3.3", 512),
    "gost2001": ("1.2.643.2.2.19", "1.2.643.2.2.3", 256),
    "rsa": ("1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11", 2048),
    "ec": ("1.2.840.10045.2.1", "1.2.840.10045.4.3.2", 256),
    "ed25519": ("1.3.101.112", "1.3.101.112", 256),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return gost_workdir(tmp_path_factory, "x509-gost")


@pytest.fixture(scope="module")
def certificates(workdir) -> dict[str, CertFiles]:
    made = {
        algorithm: make_cert(workdir, algorithm, subject=SUBJECT, name=algorithm)
        for algorithm in ("gost2012_256", "gost2012_512", "gost2001", "ed25519")
    }
    made["rsa"] = make_cert(
        workdir, "rsa", subject="/C=RU/CN=zapis.miac77.ru", san=["zapis.miac77.ru", "77.2dr.ru"], name="rsa"
    )
    made["ec"] = make_cert(workdir, "ec", subject="/CN=zapis.miac77.ru", san=["zapis.miac77.ru"], name="ec")
    return made


def openssl_dates(cert: CertFiles) -> tuple[str, str]:
    lines = openssl_x509_field(cert, "-dates", "-dateopt", "iso_8601").splitlines()
    values = dict(line.split("=", 1) for line in lines)
    # OpenSSL prints "2026-11-25 20:37:36Z"
    return tuple(values[key].replace(" ", "T") for key in ("notBefore", "notAfter"))


@pytest.mark.parametrize("algorithm", list(EXPECTED))
def test_info_matches_openssl(certificates, algorithm):
    cert = certificates[algorithm]
    info = x509_info(cert.pem)
    public_key_oid, signature_oid, key_size = EXPECTED[algorithm]
    assert info["key_algorithm"] == algorithm
    assert info["public_key_oid"] == public_key_oid
    assert info["signature_algorithm_oid"] == signature_oid
    assert info["key_size"] == key_size
    assert info["serial_number"] == openssl_x509_field(cert, "-serial").removeprefix("serial=")
    assert (info["not_before"], info["not_after"]) == openssl_dates(cert)
    sha1 = openssl_x509_field(cert, "-fingerprint", "-sha1").split("=", 1)[1].replace(":", "")
    sha256 = openssl_x509_field(cert, "-fingerprint", "-sha256").split("=", 1)[1].replace(":", "")
    assert info["sha1_thumbprint"] == sha1
    assert info["sha256_fingerprint"] == sha256
    assert info["streebog256"] == openssl_streebog256(cert.der_path)


@pytest.mark.parametrize("algorithm", ["gost2012_256", "gost2012_512", "gost2001"])
def test_subject_matches_openssl(certificates, algorithm):
    cert = certificates[algorithm]
    printed = openssl_x509_field(cert, "-subject", "-nameopt", "RFC2253,-esc_msb,-dump_unknown")
    # OpenSSL 3.0 has no name for 1.2.643.100.4 (INNLE, added in 3.1+).
    expected = printed.removeprefix("subject=").replace("1.2.643.100.4=", "INNLE=")
    info = x509_info(cert.pem)
    assert info["subject"] == expected
    assert info["issuer"] == expected
    assert info["subject_fields"]["OGRN"] == "1027700000000"
    assert info["subject_fields"]["INNLE"] == "7700000000"
    assert info["subject_fields"]["O"] == "ГБУЗ «МИАЦ», г. Москва"  # noqa: RUF001


def test_san_dns_names(certificates):
    assert x509_info(certificates["rsa"].pem)["dns_names"] == ["zapis.miac77.ru", "77.2dr.ru"]
    assert x509_info(certificates["ec"].pem)["dns_names"] == ["zapis.miac77.ru"]
    assert x509_info(certificates["gost2012_256"].pem)["dns_names"] == []


@pytest.mark.parametrize("algorithm", ["gost2012_256", "rsa"])
def test_slurp_forms_give_the_same_info(certificates, algorithm):
    cert = certificates[algorithm]
    reference = x509_info(cert.pem)
    assert x509_info(base64.b64encode(cert.der).decode()) == reference
    assert x509_info(base64.b64encode(cert.pem.encode()).decode()) == reference


@pytest.mark.parametrize("algorithm", ["gost2012_256", "gost2012_512"])
def test_require_accepts_gost2012(certificates, algorithm):
    cert = certificates[algorithm]
    assert x509_require_gost2012(cert.pem)["streebog256"] == openssl_streebog256(cert.der_path)


@pytest.mark.parametrize(
    ("algorithm", "found"),
    [
        ("gost2001", "the public key is GOST R 34.10-2001"),
        ("rsa", "the public key is rsa"),
        ("ec", "the public key is ec"),
        ("ed25519", "the public key is ed25519"),
    ],
)
def test_require_rejects_other_algorithms(certificates, algorithm, found):
    with pytest.raises(AnsibleFilterError) as caught:
        x509_require_gost2012(certificates[algorithm].pem)
    assert found in str(caught.value)
    assert "signature algorithm" in str(caught.value)


def test_require_rejects_expired(workdir):
    cert = make_cert(
        workdir,
        "gost2012_256",
        name="expired",
        not_before=datetime(2023, 1, 1, tzinfo=UTC),
        not_after=datetime(2024, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(AnsibleFilterError, match="expired on 2024-01-01T00:00:00Z") as caught:
        x509_require_gost2012(base64.b64encode(cert.der).decode())
    assert "public key" not in str(caught.value)
    assert x509_require_gost2012(cert.pem, "2023-06-01T00:00:00Z")["not_after"] == "2024-01-01T00:00:00Z"


def test_require_rejects_not_yet_valid(workdir):
    cert = make_cert(workdir, "gost2012_512", name="future", not_before=datetime(2090, 1, 1, tzinfo=UTC))
    with pytest.raises(AnsibleFilterError, match="not yet valid until 2090-01-01T00:00:00Z"):
        x509_require_gost2012(cert.pem)


def test_ca_issued_gost_certificate(workdir):
    ca = make_cert(workdir, "gost2012_512", subject="/C=RU/O=Test UC/CN=Test GOST CA", ca=True, name="gost-ca")
    leaf = make_cert(workdir, "gost2012_256", subject=SUBJECT, issuer=ca, name="gost-leaf")
    info = x509_require_gost2012(leaf.pem)
    assert info["key_algorithm"] == "gost2012_256"
    assert info["signature_algorithm_oid"] == "1.2.643.7.1.1.3.3"  # the CA's 512-bit signature
    assert info["issuer"] == "CN=Test GOST CA,O=Test UC,C=RU"
    assert info["self_issued"] is False
    assert x509_info(ca.pem)["is_ca"] is True


@pytest.mark.parametrize("size", [0, 1, 31, 32, 63, 64, 65, 127, 128, 1000, 4099])
def test_streebog_matches_openssl_on_random_data(workdir, size):
    data = os.urandom(size)
    path = workdir / f"random-{size}.bin"
    path.write_bytes(data)
    assert streebog256(data).hex().upper() == openssl_streebog256(path)


def test_streebog_rfc_example_through_openssl(workdir):
    # RFC 6986, 10.1: M1 is the ASCII string "0123...012" (63 bytes).
    digest = openssl("dgst", "-md_gost12_256", "-r", directory=workdir, stdin=b"0123456789" * 6 + b"012")
    assert digest.split()[0] == b"9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500"


def test_filters_in_a_playbook(workdir, certificates):
    """Through Ansible: slurp returns base64, conditions need real booleans (ansible-core 2.19)."""
    gost, rsa = certificates["gost2012_256"], certificates["rsa"]
    playbook = workdir / "x509-filters.yml"
    playbook.write_text(
        textwrap.dedent(
            """\
            - name: Use the x509 filters on slurped files
              hosts: localhost
              connection: local
              gather_facts: false
              tasks:
                - name: Read the GOST certificate
                  ansible.builtin.slurp:
                    src: "{{ gost_der }}"
                  register: gost
                - name: Check it
                  ansible.builtin.assert:
                    that:
                      - (gost.content | x509_require_gost2012).streebog256 == expected_hash
                      - (gost.content | x509_info).key_algorithm == 'gost2012_256'
                - name: Refuse the RSA certificate
                  ansible.builtin.set_fact:
                    refused: "{{ lookup('ansible.builtin.file', rsa_pem) | x509_require_gost2012 }}"
            """
        ),
        encoding="utf-8",
    )
    run = ansible_playbook(
        playbook,
        "localhost,",
        extra_vars={
            "gost_der": str(gost.der_path),
            "rsa_pem": str(rsa.pem_path),
            "expected_hash": openssl_streebog256(gost.der_path),
        },
        timeout=120,
    )
    assert run.recap["localhost"]["ok"] == 2, run.output
    assert run.recap["localhost"]["failed"] == 1, run.output
    assert "the public key is rsa" in run.output
