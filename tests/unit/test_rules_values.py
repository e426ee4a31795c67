# ruff: noqa: RUF001 (Cyrillic organisation names are the point)
"""module_utils/esia_onboard/org.py, values.py, subjects.py, secrets.py, nginx.py and consistency.py."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from module_utils.esia_onboard import consistency, nginx, org, secrets, subjects, values

ORG = {
    "name": "ГБУЗ «МИАЦ»",
    "short_name": "ГБУЗ «МИАЦ»",
    "ogrn": "1027700000008",
    "inn": "7700000009",
    "contact": {"name": "Петров П. П.", "email": "esia@miac77.ru", "phone": "+7 (495) 000-00-00"},
}


def test_ogrn_inn():
    assert org.ogrn_valid("1047707030513") and org.inn_valid("7707329152")  # the FNS itself
    assert not org.ogrn_valid("1047707030514") and not org.inn_valid("7707329153")
    assert not org.ogrn_valid("3047707030513")  # 3 = an individual entrepreneur's record
    assert not org.ogrn_valid(1047707030513) and not org.inn_valid(7707329152)
    assert not org.ogrn_valid("1047707030513\n") and not org.inn_valid("77073291")


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("esia@miac77.ru", True),
        ("a.b+c@sub.miac77.ru", True),
        ("esia at miac77.ru", False),
        ("esia@miac77", False),
        ("esia@miac77.ru\n", False),
        ("@miac77.ru", False),
        (5, False),
    ],
)
def test_email(email, ok):
    assert org.email_valid(email) is ok
    assert (org.email_rule(email, {}) == []) is ok


@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("+7 (495) 000-00-00", True),
        ("84950000000", True),
        ("000-00", False),
        ("+7 495 000-00-00; x", False),
        (None, False),
    ],
)
def test_phone(phone, ok):
    assert org.phone_valid(phone) is ok


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"name": ""}, "portal_org.name"),
        ({"short_name": "a\nb"}, "portal_org.short_name"),
        ({"type": 5}, "portal_org.type"),
        ({"ogrn": "1"}, "portal_org.ogrn"),
        ({"inn": "1"}, "portal_org.inn"),
        ({"contact": "x"}, "portal_org.contact"),
        ({"contact": {**ORG["contact"], "name": ""}}, "portal_org.contact.name"),
        ({"contact": {**ORG["contact"], "email": "x"}}, "portal_org.contact.email"),
        ({"contact": {**ORG["contact"], "phone": "x"}}, "portal_org.contact.phone"),
    ],
)
def test_org_rule(changes, setting):
    assert org.org_rule(ORG, {}) == []
    found = org.org_rule({**ORG, **changes}, {})
    assert [p.split(":")[0] for p in found] == [setting]
    assert org.org_rule("МИАЦ", {})[0].startswith("portal_org:")


def test_one_line_and_numbers():
    assert values.one_line("a b") and not values.one_line("a\n") and not values.one_line("a\u2028b")
    assert values.one_line_rule("x", {}, setting="s") == [] and values.one_line_rule("x\r", {}, setting="s")
    assert values.one_line_rule(5, {}, setting="s")
    assert values.one_line_nonempty_rule(" ", {}, setting="s") and values.one_line_nonempty_rule("x", {}) == []
    assert values.positive_rule(1, {}) == [] and values.positive_rule(0.5, {}) == []
    assert values.positive_rule(0, {}) and values.positive_rule(True, {}) and values.positive_rule("1", {})
    assert values.non_negative_rule(0, {}) == [] and values.non_negative_rule(-1, {})
    assert values.ttl_rule(300, {}) == [] and values.ttl_rule(0, {}) and values.ttl_rule(2**31, {})
    assert values.ttl_rule(True, {})
    assert values.stratum_rule(10, {}) == [] and values.stratum_rule(16, {}) and values.stratum_rule(0, {})


def test_checksums_packages_timezone():
    assert values.sha256_rule("D2:6D" + "0" * 60, {}) == [] and values.sha256_rule("abc", {})
    assert values.sha256_or_empty_rule("", {}) == [] and values.sha256_or_empty_rule("a" * 64, {}) == []
    assert values.sha256_or_empty_rule("a" * 63, {}) and values.sha256_or_empty_rule("g" * 64, {})
    assert values.sha256_or_empty_rule("a" * 64 + "\n", {})
    assert values.hex_digest_valid("ab" * 16, 32) and not values.hex_digest_valid("ab" * 16, 64)
    assert values.package_rule("lsb-cprocsp-base", {}) == [] and values.package_rule("Bad", {})
    assert values.packages_rule(["chrony", "nginx=1.22.1-9"], {}) == []
    assert values.packages_rule(["x y"], {}, setting="p")[0].startswith("p[0]:")
    assert values.timezone_rule("Europe/Moscow", {}) == [] and values.timezone_rule("UTC", {}) == []
    assert values.timezone_rule("Europe/Moscow;", {}) and values.timezone_rule("../etc", {})


def test_renewal_window_cross():
    assert values.renewal_window_cross({"cryptopro_selfsigned_days": 365, "cryptopro_selfsigned_renew_days": 30}) == []
    found = values.renewal_window_cross(
        {"portal_https_lab_certificate_days": 20, "portal_https_expiry_warning_days": 30}
    )
    assert found[0].startswith("portal_https_expiry_warning_days:")
    assert values.renewal_window_cross({"cryptopro_selfsigned_days": 5}) == []


def test_scopes_rule():
    assert values.scopes_rule(["openid", "fullname"], {}) == []
    assert "did you mean 'fullname'" in values.scopes_rule(["openid", "fulname"], {})[0]
    assert values.scopes_rule("openid", {})[0].startswith("esia_client_scopes:")


@pytest.mark.parametrize(
    ("kind", "value", "fragment"),
    [
        ("CN", "x" * 64, None),
        ("CN", "x" * 65, "at most 64"),
        ("L", "x" * 128, None),
        ("L", "x" * 129, "128"),
        ("C", "RU", None),
        ("C", "RUS", "two-letter"),
        ("OGRN", "1027700000008", None),
        ("OGRN", "1", "13 digits"),
        ("INNLE", "7700000009", None),
        ("SNILS", "1234567890", "11"),
        ("E", "x" * 256, "255"),
        ("CN", "", "set a value"),
        ("CN", "a\nb", "one line"),
        ("CN", 5, "quoted"),
        ("1.2.643.100.5", "x", None),
    ],
)
def test_subject_values(kind, value, fragment):
    found = subjects.value_problem(kind, value)
    assert (fragment in found) if fragment else found is None


def test_canonical_type():
    assert subjects.canonical_type("organizationName") == "O"
    assert subjects.canonical_type("s") == "ST" and subjects.canonical_type("emailAddress") == "E"
    assert subjects.canonical_type("1.2.643.100.1") == "1.2.643.100.1"
    assert subjects.canonical_type("XX") is None and subjects.canonical_type(5) is None


def test_cryptopro_subject_rule():
    good = [{"type": "C", "value": "RU"}, {"type": "CN", "value": "МИАЦ"}, {"type": "OGRN", "value": "1027700000008"}]
    assert subjects.cryptopro_subject_rule(good, {}) == []
    assert "at least a CN" in subjects.cryptopro_subject_rule([], {})[0]
    assert "add a CN" in subjects.cryptopro_subject_rule([{"type": "O", "value": "x"}], {})[0]
    found = subjects.cryptopro_subject_rule(
        [{"type": "XX", "value": "x"}, {"type": "CN"}, {"type": "CN", "value": "x" * 65}], {}
    )
    assert [p.split(":")[0] for p in found] == [
        "cryptopro_subject[0].type",
        "cryptopro_subject[1]",
        "cryptopro_subject[2].value",
    ]


def test_csr_subject_rule_and_default_subject():
    assert subjects.csr_subject_rule({"countryName": "RU", "organizationName": "", "OU": None}, {}) == []
    found = subjects.csr_subject_rule({"countryName": "RUS", "colour": "red"}, {})
    assert [p.split(":")[0] for p in found] == [
        "portal_https_csr_subject.countryName",
        "portal_https_csr_subject.colour",
    ]
    assert subjects.default_subject_cross({"portal_org": ORG}) == []
    long = subjects.default_subject_cross({"portal_org": {**ORG, "short_name": "О" * 65}})
    assert long[0].startswith("portal_org.short_name:")
    both = {"portal_org": {**ORG, "short_name": "О" * 65}, "cryptopro_subject": [], "portal_https_csr_subject": {}}
    assert subjects.default_subject_cross(both) == []
    assert subjects.default_subject_cross({"portal_org": "x"}) == []


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("МИАЦ", "МИАЦ"),
        ('ГБУЗ "МИАЦ", г. Москва', 'ГБУЗ \\"МИАЦ\\"\\, г. Москва'),
        ("a+b;c<d>e\\f", "a\\+b\\;c\\<d\\>e\\\\f"),
        ("#1", "\\#1"),
        (" x ", "\\ x\\ "),
        ("a#b", "a#b"),
        ("nul\x00", "nul\\00"),
        (77, "77"),
    ],
)
def test_rdn_escape(value, escaped):
    assert subjects.rdn_escape(value) == escaped


def test_rdn_escape_round_trips_through_cryptography():
    from cryptography.x509.name import Name

    for value in ('ГБУЗ "МИАЦ", г. Москва', "#x", " lead", "a+b=c;d"):
        name = Name.from_rfc4514_string(f"CN={subjects.rdn_escape(value)}")
        assert name.rfc4514_string() and next(iter(name)).value == value


def test_tsig():
    assert secrets.tsig_algorithm_rule("hmac-sha256", {}) == []
    assert "weak" in secrets.tsig_algorithm_rule("hmac-md5", {})[0]
    assert "use one of" in secrets.tsig_algorithm_rule("HMAC-SHA256", {})[0]
    assert secrets.tsig_algorithm_warning({"portal_domain_tsig_algorithm": "hmac-sha1"})
    assert secrets.tsig_algorithm_warning({"portal_domain_tsig_algorithm": "hmac-sha256"}) == []
    key32 = base64.b64encode(b"k" * 32).decode()
    assert secrets.tsig_secret_problem(key32, "hmac-sha256") is None
    assert "bytes" in secrets.tsig_secret_problem(key32, "hmac-sha512")
    assert "bytes" in secrets.tsig_secret_problem(base64.b64encode(b"k" * 8).decode(), "hmac-sha256")
    assert "not base64" in secrets.tsig_secret_problem("a b", "hmac-sha256")
    assert "padding" in secrets.tsig_secret_problem(key32[:-1], "hmac-sha256")
    assert "vault" in secrets.tsig_secret_problem("", "hmac-sha256")
    found = secrets.tsig_secret_rule("!!", {"portal_domain_tsig_algorithm": "hmac-sha256"})
    assert found[0].startswith("portal_domain_tsig_secret: got '(hidden)'") and "!!" not in found[0]


@pytest.mark.parametrize(
    ("pin", "fragment"),
    [
        ("123456", None),
        (12345678, None),
        ("12345", "6..64"),
        ("1" * 65, "6..64"),
        ("123456\n", "one line"),
        (True, "quoted"),
        (None, "quoted"),
    ],
)
def test_pin(pin, fragment):
    found = secrets.pin_problem(pin)
    assert (fragment in found) if fragment else found is None
    assert (secrets.pin_rule(pin, {}) == []) is (fragment is None)


def test_license_serial():
    assert secrets.license_serial_rule("", {}) == []
    assert secrets.license_serial_rule("4040A-Q0000-01234-56789-ABCDE", {}) == []
    assert secrets.license_serial_rule("4040AQ0000012345678 9ABCDE", {})


def test_pem_keys():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()
    assert secrets.pem_key_problem(pem) is None
    assert "encrypted" in secrets.pem_key_problem(encrypted)
    assert "does not load" in secrets.pem_key_problem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert "PEM" in secrets.pem_key_problem("not a key")
    assert secrets.pem_key_or_empty_rule("", {}) == []
    assert secrets.pem_key_or_empty_rule("x", {}, setting="k")[0].startswith("k: got '(hidden)'")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("http://127.0.0.1:8080", True),
        ("https://app.miac77.local/portal/", True),
        ("http://[2001:db8::1]:8080", True),
        ("http://127.0.0.1:8080; }", False),
        ("http://127.0.0.1:8080 ", False),
        ("http://127.0.0.1:8080\n", False),
        ("ftp://x", False),
        ("http://0.0.0.0", False),
        ("http://1.2.3.4.5", False),
        ("http://300.1.1.1", False),
        ("http://x:99999", False),
        ("http://[::]:80", False),
        ("http://x/$uri", False),
        ("http://x/{", False),
        ("http://x/'", False),
        (5, False),
    ],
)
def test_upstream(value, ok):
    assert nginx.upstream_valid(value) is ok
    assert (nginx.upstream_rule(value, {}) == []) is ok


def test_nginx_grammars():
    assert nginx.server_names_rule(["www.zapis.miac77.ru", "*.miac77.ru"], {}) == []
    assert nginx.server_names_rule(["a;b.ru", "a b.ru", "*.ru"], {})
    assert nginx.resolvers_rule(["192.0.2.53", "[2001:db8::53]:53", "dns.miac77.ru:53"], {}) == []
    assert len(nginx.resolvers_rule(["2001:db8::53", "192.0.2.53 valid=30s", "192.0.2.53:0"], {})) == 3
    assert nginx.url_path_rule("/esia/callback", {}) == [] and nginx.url_path_rule("/", {}) == []
    for bad in ("esia", "/a b", "/a?b", "//evil.example", "/a;b", 5):
        assert nginx.url_path_rule(bad, {}), bad
    assert nginx.https_urls_rule(["https://zapis.miac77.ru/cb?x=1"], {}) == []
    assert nginx.https_urls_rule(["http://zapis.miac77.ru/cb", "https://x/ y"], {})
    assert nginx.base_url_rule("https://esia-portal1.test.gosuslugi.ru", {}) == []
    assert nginx.base_url_rule("https://esia.gosuslugi.ru/aas", {})
    assert nginx.ciphers_rule("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", {}) == []
    assert nginx.ciphers_rule("HIGH; ssl_x", {})
    assert nginx.curves_rule("X25519:prime256v1", {}) == [] and nginx.curves_rule("X25519 ; x", {})


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", None),
        ("add_header X-A 1;", None),
        ("location /x { return 204; }", None),
        ('add_header X "}";', None),
        ("add_header X 1; }", "closes"),
        ("location / {", "not closed"),
        ('add_header X "1;', "quote"),
        ("add_header X 1", "';'"),
        (5, "string"),
    ],
)
def test_extra_config(value, fragment):
    found = nginx.extra_config_problem(value)
    assert (fragment in found) if fragment else found is None
    assert (nginx.extra_config_rule(value, {}) == []) is (fragment is None)


def test_distinct_ports():
    assert nginx.distinct_ports_cross({"portal_https_http_port": 80, "portal_https_https_port": 443}) == []
    assert nginx.distinct_ports_cross({"portal_https_http_port": 80, "portal_https_https_port": 80})
    assert nginx.distinct_ports_cross({}) == []


def test_consistency():
    assert consistency.https_upstream_cross({"portal_https_upstream": "", "portal_https_placeholder": False})
    assert consistency.https_upstream_cross({"portal_https_upstream": "", "portal_https_placeholder": True}) == []
    assert consistency.https_fallback_cross({"portal_https_fallback_enabled": True})
    assert (
        consistency.https_fallback_cross({"portal_https_fallback_enabled": True, "portal_domain_fallback": "77.2dr.ru"})
        == []
    )
    rule = consistency.private_key_source_rule
    assert rule("k", {"portal_https_certificate_source": "ownca"})[0].startswith(
        "portal_https_private_key: got '(hidden)'"
    )
    assert rule("k", {"portal_https_certificate_source": "provided"}) == []
    assert rule("", {"portal_https_certificate_source": "ownca"}) == []
    fallback = rule(
        "k",
        {"portal_https_certificate_source": "provided", "portal_https_fallback_certificate_source": "ownca"},
        setting="portal_https_fallback_private_key",
    )
    assert fallback and "portal_https_fallback_certificate_source" in fallback[0]
