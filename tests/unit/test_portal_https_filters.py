"""The portal_https role's certificate checks, against certificates made here
with `cryptography` (a CA, intermediates, leaves good and bad)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

_PLUGIN = Path(__file__).resolve().parents[2] / "roles" / "portal_https" / "filter_plugins" / "portal_https.py"
_spec = importlib.util.spec_from_file_location("portal_https_filters", _PLUGIN)
plugin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plugin)

check = plugin.portal_https_certificate_check
ca_certificate = plugin.portal_https_ca_certificate
ascii_name = plugin.portal_https_ascii_name

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject_cn: str,
    key,
    issuer_cert: x509.Certificate | None = None,
    issuer_key=None,
    *,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    not_before: datetime.datetime = NOW - 10 * DAY,
    not_after: datetime.datetime = NOW + 300 * DAY,
    ocsp: str = "",
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(subject_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if ocsp:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def key_pem(key, password: bytes | None = None) -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


@pytest.fixture(scope="module")
def pki():
    root_key, int_key, leaf_key = _key(), _key(), _key()
    root = _cert("Test Root", root_key, ca=True)
    intermediate = _cert("Test Issuing CA", int_key, root, root_key, ca=True)
    leaf = _cert(
        "zapis.miac77.ru",
        leaf_key,
        intermediate,
        int_key,
        dns=("zapis.miac77.ru", "www.zapis.miac77.ru"),
        ocsp="http://ocsp.example.test/",
    )
    return {
        "root": root,
        "root_key": root_key,
        "intermediate": intermediate,
        "int_key": int_key,
        "leaf": leaf,
        "leaf_key": leaf_key,
    }


def run(certificate: str, names=("zapis.miac77.ru",), **kwargs) -> dict:
    kwargs.setdefault("certificate_label", "zapis.crt")
    kwargs.setdefault("chain_label", "zapis.chain.pem")
    kwargs.setdefault("key_label", "portal_https_private_key")
    return check(certificate, list(names), now=NOW, **kwargs)


def test_good_certificate_chain_and_key(pki):
    result = run(pem(pki["leaf"]), chain=pem(pki["intermediate"]), private_key=key_pem(pki["leaf_key"]))
    assert result["errors"] == []
    assert result["warnings"] == []
    assert result["key_checked"] is True
    assert result["chain_length"] == 1
    assert result["dns_names"] == ["zapis.miac77.ru", "www.zapis.miac77.ru"]
    assert result["subject"] == "CN=zapis.miac77.ru"
    assert result["issuer"] == "CN=Test Issuing CA"
    assert result["ocsp_uri"] == "http://ocsp.example.test/"
    assert result["not_after"] == (NOW + 300 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result["days_left"] == 300
    der = pki["leaf"].public_bytes(serialization.Encoding.DER)
    assert result["sha256_fingerprint"] == hashlib.sha256(der).hexdigest().upper()
    assert result["leaf_pem"] == pem(pki["leaf"])
    assert result["chain_pem"] == pem(pki["intermediate"])


def test_fullchain_in_the_certificate_file_is_accepted(pki):
    result = run(pem(pki["leaf"], pki["intermediate"]), public_key=_public_pem(pki["leaf_key"]))
    assert result["errors"] == []
    assert result["chain_length"] == 1
    assert result["chain_pem"] == pem(pki["intermediate"])


def _public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_mismatched_private_key_names_key_and_file(pki):
    result = run(pem(pki["leaf"]), chain=pem(pki["intermediate"]), private_key=key_pem(_key()))
    assert len(result["errors"]) == 1
    message = result["errors"][0]
    assert "portal_https_private_key does not match zapis.crt" in message
    assert "BEGIN" not in message


def test_mismatched_public_key(pki):
    result = run(pem(pki["leaf"]), chain=pem(pki["intermediate"]), public_key=_public_pem(_key()))
    assert any("does not match zapis.crt" in e for e in result["errors"])


def test_rsa_key_against_ec_certificate(pki):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    result = run(pem(pki["leaf"]), chain=pem(pki["intermediate"]), private_key=key_pem(rsa_key))
    assert any("does not match" in e for e in result["errors"])


def test_encrypted_key_is_refused_without_leaking(pki):
    encrypted = key_pem(pki["leaf_key"], b"secret-passphrase")
    result = run(pem(pki["leaf"]), chain=pem(pki["intermediate"]), private_key=encrypted)
    assert result["errors"] == [
        "portal_https_private_key: the private key is encrypted; nginx needs it unencrypted"
        " (protect it with Ansible Vault instead of a passphrase)"
    ]


def test_unreadable_key(pki):
    result = run(pem(pki["leaf"]), private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert result["errors"] == ["portal_https_private_key: not a readable PEM private key"]


def test_missing_san_names_the_missing_name(pki):
    result = run(pem(pki["leaf"]), names=["zapis.miac77.ru", "77.2dr.ru"], chain=pem(pki["intermediate"]))
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith("zapis.crt: the subjectAltName does not cover 77.2dr.ru")
    assert "zapis.miac77.ru, www.zapis.miac77.ru" in result["errors"][0]


def test_cn_without_san_is_not_enough(pki):
    cn_only = _cert("zapis.miac77.ru", _key(), pki["intermediate"], pki["int_key"])
    result = run(pem(cn_only), chain=pem(pki["intermediate"]))
    assert any("does not cover zapis.miac77.ru (it lists no DNS names at all)" in e for e in result["errors"])


@pytest.mark.parametrize(
    ("name", "covered"),
    [("zapis.miac77.ru", True), ("a.b.miac77.ru", False), ("miac77.ru", False), ("ZAPIS.MIAC77.RU.", True)],
)
def test_wildcard_covers_exactly_one_label(pki, name, covered):
    wildcard = _cert("*.miac77.ru", _key(), pki["intermediate"], pki["int_key"], dns=("*.miac77.ru",))
    result = run(pem(wildcard), names=[name], chain=pem(pki["intermediate"]))
    assert (result["errors"] == []) is covered


def test_internationalised_name_is_compared_in_punycode(pki):
    idn = _cert("idn", _key(), pki["intermediate"], pki["int_key"], dns=("xn--e1afmkfd.xn--p1ai",))
    assert run(pem(idn), names=["пример.рф"], chain=pem(pki["intermediate"]))["errors"] == []


def test_expired_certificate(pki):
    old = _cert(
        "zapis.miac77.ru",
        _key(),
        pki["intermediate"],
        pki["int_key"],
        dns=("zapis.miac77.ru",),
        not_before=NOW - 400 * DAY,
        not_after=NOW - 2 * DAY,
    )
    result = run(pem(old), chain=pem(pki["intermediate"]))
    expected_date = (NOW - 2 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result["errors"] == [f"zapis.crt: certificate #1 (CN=zapis.miac77.ru) expired on {expected_date}"]


def test_not_yet_valid_certificate(pki):
    future = _cert(
        "zapis.miac77.ru",
        _key(),
        pki["intermediate"],
        pki["int_key"],
        dns=("zapis.miac77.ru",),
        not_before=NOW + 3 * DAY,
        not_after=NOW + 300 * DAY,
    )
    result = run(pem(future), chain=pem(pki["intermediate"]))
    assert len(result["errors"]) == 1
    assert "is not valid before" in result["errors"][0]


@pytest.mark.parametrize(("days_left", "threshold", "warned"), [(10, 30, True), (29, 30, True), (45, 30, False)])
def test_expiry_warning_threshold(pki, days_left, threshold, warned):
    soon = _cert(
        "zapis.miac77.ru",
        _key(),
        pki["intermediate"],
        pki["int_key"],
        dns=("zapis.miac77.ru",),
        not_after=NOW + days_left * DAY,
    )
    result = run(pem(soon), chain=pem(pki["intermediate"]), warning_days=threshold)
    assert result["errors"] == []
    assert bool(result["warnings"]) is warned
    if warned:
        assert f"in {days_left} day(s) (warning threshold {threshold} days)" in result["warnings"][0]
        assert result["warnings"][0].startswith("zapis.crt: certificate #1")


def test_expired_intermediate_is_an_error(pki):
    old_int = _cert("Test Issuing CA", pki["int_key"], pki["root"], pki["root_key"], ca=True, not_after=NOW - DAY)
    result = run(pem(pki["leaf"]), chain=pem(old_int))
    assert any(e.startswith("zapis.chain.pem: certificate #1 (CN=Test Issuing CA) expired") for e in result["errors"])


def test_root_in_chain_is_refused(pki):
    result = run(pem(pki["leaf"]), chain=pem(pki["intermediate"], pki["root"]))
    assert result["errors"] == [
        "zapis.chain.pem: certificate #2 (CN=Test Root) is a self-signed root CA; leave the root out of the chain"
        " (clients have it in their trust store)"
    ]


def test_chain_in_wrong_order_is_refused(pki):
    int2_key = _key()
    int2 = _cert("Second Issuing CA", int2_key, pki["intermediate"], pki["int_key"], ca=True)
    leaf = _cert("zapis.miac77.ru", _key(), int2, int2_key, dns=("zapis.miac77.ru",))
    assert run(pem(leaf), chain=pem(int2, pki["intermediate"]))["errors"] == []
    errors = run(pem(leaf), chain=pem(pki["intermediate"], int2))["errors"]
    assert errors
    assert errors[0].startswith("zapis.chain.pem: certificate #1 (CN=Test Issuing CA) did not issue")


def test_chain_of_another_ca_is_refused(pki):
    other_key = _key()
    other = _cert("Other CA", other_key, ca=True)
    other_int = _cert("Test Issuing CA", _key(), other, other_key, ca=True)  # same name, other key
    errors = run(pem(pki["leaf"]), chain=pem(other_int))["errors"]
    assert len(errors) == 1
    assert "did not issue the certificate before it (CN=zapis.miac77.ru)" in errors[0]


def test_ca_certificate_first_is_refused(pki):
    errors = run(pem(pki["intermediate"], pki["leaf"]))["errors"]
    assert any("the first certificate (CN=Test Issuing CA) is a CA certificate" in e for e in errors)


@pytest.mark.parametrize("text", ["", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_no_certificate(text):
    assert check(text, ["a.example"], certificate_label="x.crt")["errors"] == [
        "x.crt: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
    ]


def test_broken_pem_block():
    broken = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    errors = check(broken, ["a.example"], certificate_label="x.crt")["errors"]
    assert len(errors) == 1
    assert errors[0].startswith("x.crt: certificate #1 is not a readable X.509 certificate")


@pytest.mark.parametrize("names", [[], "zapis.miac77.ru", None])
def test_names_must_be_a_list(pki, names):
    with pytest.raises(AnsibleFilterError):
        check(pem(pki["leaf"]), names)


def test_ca_certificate_pem_and_slurped_forms_agree(pki):
    der = pki["root"].public_bytes(serialization.Encoding.DER)
    expected = hashlib.sha256(der).hexdigest().upper()
    as_pem = pem(pki["root"])
    for form in (as_pem, base64.b64encode(as_pem.encode()).decode(), base64.b64encode(der).decode()):
        info = ca_certificate(form, "root.cer")
        assert info["sha256_fingerprint"] == expected
        assert info["ca"] is True
        assert info["self_signed"] is True
        assert info["pem"] == as_pem
        assert info["subject"] == "CN=Test Root"


def test_ca_certificate_intermediate_is_not_self_signed(pki):
    assert ca_certificate(pem(pki["intermediate"]))["self_signed"] is False


@pytest.mark.parametrize("bad", ["", "bm90IGEgY2VydGlmaWNhdGU=", 42])
def test_ca_certificate_rejects_non_certificates(bad):
    with pytest.raises(AnsibleFilterError, match=r"root\.cer"):
        ca_certificate(bad, "root.cer")


def test_ca_certificate_rejects_two_certificates(pki):
    with pytest.raises(AnsibleFilterError, match="exactly one PEM certificate, found 2"):
        ca_certificate(pem(pki["root"], pki["intermediate"]), "root.cer")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("пример.рф", "xn--e1afmkfd.xn--p1ai"), ("Zapis.MIAC77.ru.", "zapis.miac77.ru"), ("99.2dr.ru", "99.2dr.ru")],
)
def test_ascii_name(name, expected):
    assert ascii_name(name) == expected


@pytest.mark.parametrize("bad", ["", "  ", None, 7, "a..b"])
def test_ascii_name_rejects(bad):
    with pytest.raises(AnsibleFilterError):
        ascii_name(bad)
