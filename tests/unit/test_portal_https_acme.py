"""portal_https's ACME decisions, OCSP stapling decision, key type choice,
stock default-site detection (filters) and the ACME settings' rules
(module_utils/esia_onboard/acme.py), against certificates made here."""

from __future__ import annotations

import datetime
import importlib.util
from pathlib import Path

import ansible.module_utils
import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))
from ansible.module_utils.esia_onboard import acme, settings  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "portal_https_filters_acme", REPO / "roles" / "portal_https" / "filter_plugins" / "portal_https.py"
)
plugin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plugin)

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
NAMES = ["zapis.miac77.ru"]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, key, issuer, issuer_key, *, ca=False, dns=(), days=(-1, 60), ocsp=""):
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + days[0] * DAY)
        .not_valid_after(NOW + days[1] * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), critical=False)
    if ocsp:
        access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp))
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(*certs) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


@pytest.fixture(scope="module")
def pki():
    root_key, issuing_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("Root", root_key, "Root", root_key, ca=True, days=(-10, 3000))
    issuing = _cert("Issuing", issuing_key, "Root", root_key, ca=True, days=(-10, 2000))

    def leaf(days=(-1, 60), dns=tuple(NAMES), ocsp="http://ocsp.example/"):
        return _cert(NAMES[0], leaf_key, "Issuing", issuing_key, dns=dns, days=days, ocsp=ocsp)

    public = leaf_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return {"root": root, "issuing": issuing, "leaf": leaf, "public": public.decode(), "other": other.decode()}


# --- portal_https_acme_plan ----------------------------------------------------


def plan(pki, installed, **kwargs):
    kwargs.setdefault("public_key", pki["public"])
    return plugin.portal_https_acme_plan(installed, names=NAMES, now=NOW, **kwargs)


def test_no_certificate_is_due(pki):
    result = plan(pki, "")
    assert result["due"] and result["reason"] == "no certificate is installed yet"
    assert result["days_left"] is None


def test_a_valid_certificate_stays(pki):
    installed = _pem(pki["leaf"](), pki["issuing"])
    result = plan(pki, installed, renew_days=30)
    assert not result["due"], result["reason"]
    assert result["days_left"] == 60
    assert result["chain_pem"] == _pem(pki["issuing"])


def test_a_certificate_inside_the_renewal_window_is_due(pki):
    result = plan(pki, _pem(pki["leaf"](days=(-60, 20))), renew_days=30)
    assert result["due"]
    assert "fewer than portal_https_acme_renew_days (30)" in result["reason"]
    assert result["days_left"] == 20


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"public_key": "other"}, "was issued for another key"),
        ({"dns": ("other.miac77.ru",)}, "does not cover zapis.miac77.ru"),
        ({"days": (-90, -1)}, "expired on"),
    ],
)
def test_a_certificate_that_cannot_stay_is_due(pki, change, expected):
    key = pki[change.pop("public_key")] if "public_key" in change else pki["public"]
    result = plan(pki, _pem(pki["leaf"](**change)), public_key=key)
    assert result["due"]
    assert expected in result["reason"]


@pytest.mark.parametrize("source", ["ownca", "provided", "selfsigned", ""])
def test_a_valid_certificate_from_another_source_is_replaced(pki, source):
    # Switching portal_https_certificate_source to acme must not keep, say, the
    # lab CA's certificate just because it is still valid.
    result = plan(pki, _pem(pki["leaf"](), pki["issuing"]), installed_source=source)
    assert result["due"]
    assert "not from the ACME CA" in result["reason"]
    assert (source or "an unrecorded source") in result["reason"]


def test_a_valid_certificate_recorded_as_acme_stays(pki):
    result = plan(pki, _pem(pki["leaf"](), pki["issuing"]), installed_source="acme")
    assert not result["due"], result["reason"]


@pytest.mark.parametrize(
    ("fact_text", "expected"),
    [
        ('{"certificates": {"main": {"source": "ownca"}, "fallback": {"source": "acme"}}}', "ownca"),
        ('{"certificates": {"fallback": {"source": "acme"}}}', ""),
        ("", ""),
        ("not json", ""),
        ('["a list"]', ""),
        ('{"certificates": {"main": {"source": 7}}}', ""),
    ],
)
def test_recorded_source_of_the_main_site(fact_text, expected):
    assert plugin.portal_https_recorded_source(fact_text, "main") == expected


def test_force_orders_a_valid_certificate(pki):
    result = plan(pki, _pem(pki["leaf"]()), force=True)
    assert result["due"] and result["reason"] == "portal_https_acme_force_renew is true"


@pytest.mark.parametrize("days", [0, -3, True, "30"])
def test_renew_days_must_be_a_positive_integer(pki, days):
    with pytest.raises(AnsibleFilterError, match="renew_days must be a positive integer"):
        plan(pki, "", renew_days=days)


# --- portal_https_stapling -----------------------------------------------------


def staple(pki, **kwargs):
    args = {"chain_pem": _pem(pki["issuing"]), "ocsp_uri": "http://ocsp.example/", "trusted": _pem(pki["root"])}
    args.update(kwargs)
    return plugin.portal_https_stapling(_pem(pki["leaf"]()), **args)


def test_stapling_on_when_the_chain_verifies_to_a_trusted_root(pki):
    assert staple(pki) == {"on": True, "reason": "the chain verifies up to CN=Root"}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"enabled": False}, "portal_https_ocsp_stapling is false"),
        ({"ocsp_uri": ""}, "names no OCSP responder"),
        ({"chain_pem": ""}, "issuer certificate is not in the chain"),
        ({"trusted": ""}, "which is not a root in the trust store"),
    ],
)
def test_stapling_off_says_why(pki, kwargs, reason):
    result = staple(pki, **kwargs)
    assert result["on"] is False
    assert reason in result["reason"]


def test_stapling_off_for_a_root_of_the_same_name_but_another_key(pki):
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = _cert("Root", impostor_key, "Root", impostor_key, ca=True)
    assert staple(pki, trusted=_pem(impostor))["on"] is False


def test_russian_trusted_root_missing_names_the_setting():
    root_key, sub_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    sub = _cert("Russian Trusted Sub CA", sub_key, "Russian Trusted Root CA", root_key, ca=True)
    leaf = _cert(NAMES[0], leaf_key, "Russian Trusted Sub CA", sub_key, dns=tuple(NAMES))
    result = plugin.portal_https_stapling(_pem(leaf), _pem(sub), "http://ocsp.example/", trusted="")
    assert result["on"] is False
    assert "set portal_https_russian_trusted_root_file" in result["reason"]


# --- key type, challenge per certificate, stock default site -----------------


@pytest.mark.parametrize(
    ("key_type", "source", "expected"),
    [
        ("auto", "provided", "rsa"),
        ("auto", "acme", "ecdsa"),
        ("auto", "ownca", "ecdsa"),
        ("auto", "selfsigned", "ecdsa"),
        ("ecdsa", "provided", "ecdsa"),
        ("rsa", "acme", "rsa"),
    ],
)
def test_key_type_follows_the_source(key_type, source, expected):
    assert plugin.portal_https_key_type(key_type, source) == expected


def test_unknown_key_type_is_refused():
    with pytest.raises(AnsibleFilterError, match="expected auto, ecdsa or rsa"):
        plugin.portal_https_key_type("dsa", "acme")


@pytest.mark.parametrize(
    ("names", "challenge", "zone", "expected"),
    [
        (["zapis.miac77.ru"], "dns-01", "miac77.ru", "dns-01"),
        (["77.2dr.ru"], "dns-01", "miac77.ru", "http-01"),
        (["zapis.miac77.ru", "www.other.ru"], "dns-01", "miac77.ru", "http-01"),
        (["zapis.miac77.ru"], "dns-01", "", "http-01"),
        (["zapis.miac77.ru"], "http-01", "miac77.ru", "http-01"),
        (["xmiac77.ru"], "dns-01", "miac77.ru", "http-01"),
    ],
)
def test_challenge_per_certificate(names, challenge, zone, expected):
    assert plugin.portal_https_acme_challenge_for(names, challenge, zone) == expected


CONFFILES = (
    " /etc/nginx/nginx.conf 1d0c6d1c7ab3a7a4a5f4e8d9b0a1c2d3\n"
    " /etc/nginx/sites-available/default 6f3d1c2b4a5e6d7c8b9a0f1e2d3c4b5a\n"
    " /etc/nginx/old.conf 0123456789abcdef0123456789abcdef obsolete\n"
)


@pytest.mark.parametrize(
    ("path", "md5", "stock"),
    [
        ("/etc/nginx/sites-available/default", "6f3d1c2b4a5e6d7c8b9a0f1e2d3c4b5a", True),
        ("/etc/nginx/sites-available/default", "6F3D1C2B4A5E6D7C8B9A0F1E2D3C4B5A", True),
        ("/etc/nginx/sites-available/default", "00000000000000000000000000000000", False),
        ("/etc/nginx/sites-available/default", "", False),
        ("/etc/nginx/sites-enabled/default", "6f3d1c2b4a5e6d7c8b9a0f1e2d3c4b5a", False),
        ("/etc/nginx/old.conf", "0123456789abcdef0123456789abcdef", False),
    ],
)
def test_stock_conffile(path, md5, stock):
    assert plugin.portal_https_stock_conffile(CONFFILES, path, md5) is stock


# --- the settings' rules ---------------------------------------------------------


@pytest.mark.parametrize("value", ["https://acme-v02.api.letsencrypt.org/directory", "https://127.0.0.1:14000/dir", ""])
def test_directory_accepted(value):
    assert acme.directory_rule(value, {}) == []


@pytest.mark.parametrize(
    "value", ["http://acme.example/directory", "acme.example/directory", "https://a b/dir", "https://x/dir\n", 7]
)
def test_directory_refused_names_the_setting(value):
    [message] = acme.directory_rule(value, {})
    assert message.startswith("portal_https_acme_directory: got ")
    assert "ACME directory URL" in message


@pytest.mark.parametrize(("value", "ok"), [(30, True), (1, True), (365, True), (0, False), (366, False), (True, False)])
def test_renew_days(value, ok):
    assert (acme.renew_days_rule(value, {}) == []) is ok


@pytest.mark.parametrize(("value", "ok"), [("", True), ("hostmaster@miac77.ru", True), ("not an address", False)])
def test_email(value, ok):
    assert (acme.email_or_empty_rule(value, {}) == []) is ok


def test_acme_source_needs_a_directory_and_dns_01_needs_the_tsig_key():
    found = acme.acme_cross(
        {
            "portal_https_certificate_source": "provided",
            "portal_https_fallback_certificate_source": "acme",
            "portal_https_acme_directory": "",
            "portal_https_acme_challenge": "dns-01",
            "portal_domain_tsig_name": "",
            "portal_domain_dns_server": "192.0.2.53",
            "portal_domain_zone": "miac77.ru",
        }
    )
    assert [m.split(":")[0] for m in found] == ["portal_https_acme_directory", "portal_domain_tsig_name"]
    assert acme.acme_cross({"portal_https_certificate_source": "ownca"}) == []
    # an invalid directory is left out of settings: its own rule reports it, not the cross rule
    assert acme.acme_cross({"portal_https_certificate_source": "acme"}) == []


def test_account_key_required_with_acme_and_never_shown():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with_acme = {"portal_https_certificate_source": "acme"}
    assert acme.account_key_rule("", {"portal_https_certificate_source": "ownca"}) == []
    assert acme.account_key_rule(pem, with_acme) == []
    [missing] = acme.account_key_rule("", with_acme)
    assert missing.startswith("portal_https_acme_account_key: got ''") and "vault" in missing
    broken = pem.replace(pem.splitlines()[1], "A" * 64)
    [bad] = acme.account_key_rule(broken, with_acme)
    assert "A" * 64 not in bad and "(hidden)" in bad


@pytest.mark.parametrize(
    ("kid", "hmac", "setting"),
    [
        ("kid-1", "", "portal_https_acme_eab_hmac_key"),
        ("", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W", "portal_https_acme_eab_kid"),
        ("kid-1", "not base64url!", "portal_https_acme_eab_hmac_key"),
    ],
)
def test_eab_needs_both_halves(kid, hmac, setting):
    [message] = acme.eab_hmac_rule(hmac, {"portal_https_acme_eab_kid": kid})
    assert message.startswith(setting + ": got ")
    assert hmac == "" or hmac not in message


def test_the_registry_applies_the_acme_rules():
    assert settings.RULES["portal_https_acme_directory"]("http://x/dir", {})
    assert acme.acme_cross in settings.CROSS_RULES
    assert settings.SECRET_RULES["portal_https_acme_account_key"]("", {"portal_https_certificate_source": "acme"})
