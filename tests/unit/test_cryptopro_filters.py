"""Filters of the cryptopro role against CryptoPro CSP's documented output
formats (see tests/doubles/cryptopro/README.md for where each comes from)."""

# Russian text (Cyrillic letters that look Latin) is what CryptoPro prints.
# ruff: noqa: RUF001

import base64

import pytest
from ansible.errors import AnsibleFilterError

from filter_plugins.cryptopro import (
    cryptopro_certmgr_list,
    cryptopro_containers,
    cryptopro_dn,
    cryptopro_fqcn,
    cryptopro_license,
)

# csptest 5.0 on Linux: version banner, AcquireContext, one line per
# container, OK, timing, error code.
ENUM_CONT = r"""CSP (Type:80) v5.0.10010 KC1 Release Ver:5.0.12000 OS:Linux CPU:AMD64 FastCode:READY:AVX.
AcquireContext: OK. HCRYPTPROV: 17693171
\\.\HDIMAGE\esia_77
\\.\Aktiv Rutoken ECP 00 00\0c686f35c-328c-0cf8-e404-900dcf68a53
\\.\FLASH\ivanov
OK.
Total: SYS: 0.010 sec USR: 0.040 sec UTC: 0.820 sec
[ErrorCode: 0x00000000]
"""

ENUM_EMPTY = """CSP (Type:80) v5.0.10010 KC1 Release Ver:5.0.12000 OS:Linux CPU:AMD64 FastCode:READY:AVX.
AcquireContext: OK. HCRYPTPROV: 17693171
OK.
Total: SYS: 0.000 sec USR: 0.010 sec UTC: 0.020 sec
[ErrorCode: 0x00000000]
"""

# certmgr 1.1 (CSP 5), Russian algorithm names, two entries, the second
# without a key link and with the CSP 4 "PrivateKey" field name.
CERTMGR_LIST = """Certmgr 1.1 (c) "Crypto-Pro",  2007-2020.
program for managing certificates, CRLs and stores

=============================================================================
1-------
Issuer              : C=RU, CN=Test GOST CA
Subject             : OGRN=1027700000002, INNLE=7700000001, C=RU, O=ГБУЗ «МИАЦ», CN=ГБУЗ «МИАЦ»
Serial              : 0x0120DEADBEEF
SHA1 Hash           : 0e4ecebe79ffdb789fceaa2a28ce20bdd205bd53
SubjKeyID           : 75bd111334d106edebfd6f278c23f0762737a46a
Signature Algorithm : ГОСТ Р 34.11-2012/34.10-2012 256 бит
PublicKey Algorithm : ГОСТ Р 34.10-2012 (512 bits)
Not valid before    : 14/02/2026  13:22:17 UTC
Not valid after     : 14/02/2027  13:32:17 UTC
PrivateKey Link     : Yes
Container           : HDIMAGE\\\\esia_77.000\\0E4E
Provider Name       : Crypto-Pro GOST R 34.10-2012 KC1 CSP
Provider Info       : ProvType: 80, KeySpec: 1, Flags: 0x0
Extended Key Usage  : 1.3.6.1.5.5.7.3.2
                      1.3.6.1.5.5.7.3.4
2-------
Issuer              : E=ca@example.com, CN=Test CA
Subject             : E=user@example.com, CN=User Name
Serial              : 0x1234567890ABCDEF
SHA1 Thumbprint     : aabbccdd11223344556677889900aabbccdd1122
Not valid before    : 01.01.2025 00:00:00 UTC
Not valid after     : 01.01.2027 00:00:00 UTC
PrivateKey          : No
=============================================================================

[ErrorCode: 0x00000000]
"""

CERTMGR_EMPTY = """Certmgr 1.1 (c) "Crypto-Pro",  2007-2020.
program for managing certificates, CRLs and stores

=============================================================================
Empty certificate list
=============================================================================

[ErrorCode: 0x00000000]
"""

SUBJECT = [
    {"type": "C", "value": "RU"},
    {"type": "O", "value": 'ООО "Рога и копыта", филиал'},
    {"type": "CN", "value": "ИС записи/ЕСИА"},
    {"type": "OGRN", "value": "1027700000002"},
    {"type": "INNLE", "value": "7700000001"},
]


class TestDn:
    def test_openssl_style_escapes_slashes_and_keeps_order(self):
        assert cryptopro_dn(SUBJECT, "openssl") == (
            '/C=RU/O=ООО "Рога и копыта", филиал/CN=ИС записи\\/ЕСИА/OGRN=1027700000002/INNLE=7700000001'
        )

    def test_cryptopro_style_quotes_and_doubles_quotes_and_uses_oids(self):
        assert cryptopro_dn(SUBJECT, "cryptopro") == (
            'C=RU, O="ООО ""Рога и копыта"", филиал", CN=ИС записи/ЕСИА, '
            "1.2.643.100.1=1027700000002, 1.2.643.100.4=7700000001"
        )

    def test_default_style_is_openssl(self):
        assert cryptopro_dn([{"type": "CN", "value": "a\\b"}]) == "/CN=a\\\\b"

    def test_dotted_oid_type_is_passed_through(self):
        subject = [{"type": "2.5.4.3", "value": "x"}]
        assert cryptopro_dn(subject, "openssl") == "/2.5.4.3=x"
        assert cryptopro_dn(subject, "cryptopro") == "2.5.4.3=x"

    def test_state_and_email_names_per_tool(self):
        subject = [{"type": "ST", "value": "77 Москва"}, {"type": "E", "value": "a@b.ru"}]
        assert cryptopro_dn(subject, "openssl") == "/ST=77 Москва/emailAddress=a@b.ru"
        assert cryptopro_dn(subject, "cryptopro") == "S=77 Москва, E=a@b.ru"

    def test_integer_values_are_accepted(self):
        assert cryptopro_dn([{"type": "OGRN", "value": 1027700000002}]) == "/OGRN=1027700000002"

    def test_outer_spaces_are_quoted_for_cryptoapi(self):
        assert cryptopro_dn([{"type": "O", "value": " x"}], "cryptopro") == 'O=" x"'

    @pytest.mark.parametrize(
        ("subject", "message"),
        [
            ([], "non-empty list"),
            ("CN=x", "non-empty list"),
            ([{"type": "CN"}], "exactly 'type' and 'value'"),
            ([{"type": "CN", "value": "x", "extra": 1}], "exactly 'type' and 'value'"),
            ([{"type": "CN", "value": True}], "string type and a string value"),
            ([{"type": 5, "value": "x"}], "string type and a string value"),
            ([{"type": "CN", "value": "  "}], "empty value"),
            ([{"type": "CN", "value": "a\nb"}], "control character"),
            ([{"type": "XX", "value": "x"}], "unknown attribute type 'XX'"),
            ([{"type": "CN", "value": "я" * 65}], "at most 64 characters"),
            ([{"type": "C", "value": "Russia"}], "two-letter country code"),
        ],
    )
    def test_rejects_bad_subjects(self, subject, message):
        with pytest.raises(AnsibleFilterError, match=message):
            cryptopro_dn(subject)

    def test_rejects_unknown_style(self):
        with pytest.raises(AnsibleFilterError, match="style must be"):
            cryptopro_dn(SUBJECT, "gnutls")


class TestFqcn:
    def test_hdimage_name(self):
        assert cryptopro_fqcn("esia_77") == "\\\\.\\HDIMAGE\\esia_77"

    def test_other_reader(self):
        assert cryptopro_fqcn("k1", "FLASH") == "\\\\.\\FLASH\\k1"

    @pytest.mark.parametrize("bad", ["", ".hidden", "-x", "a/b", "a\\b", "имя", "a b", "x" * 65])
    def test_rejects_names_a_file_system_or_csp_would_mangle(self, bad):
        with pytest.raises(AnsibleFilterError, match="container name"):
            cryptopro_fqcn(bad)

    def test_rejects_non_strings(self):
        with pytest.raises(AnsibleFilterError, match="expects a container name, got int"):
            cryptopro_fqcn(77)


class TestContainers:
    def test_lists_every_reader_and_name(self):
        result = cryptopro_containers(ENUM_CONT)
        assert result["ok"] is True
        assert result["error_code"] == "0x00000000"
        assert result["names"] == ["esia_77", "0c686f35c-328c-0cf8-e404-900dcf68a53", "ivanov"]
        assert result["fqcns"][0] == "\\\\.\\HDIMAGE\\esia_77"
        assert result["containers"][1]["reader"] == "Aktiv Rutoken ECP 00 00"

    def test_no_containers(self):
        result = cryptopro_containers(ENUM_EMPTY)
        assert result["ok"] is True
        assert result["fqcns"] == []

    def test_error_code_is_reported(self):
        result = cryptopro_containers(ENUM_EMPTY.replace("0x00000000", "0x8009001D"))
        assert result["ok"] is False
        assert result["error_code"] == "0x8009001d"

    @pytest.mark.parametrize("bad", ["", "bash: csptest: command not found", "AcquireContext: OK."])
    def test_rejects_what_is_not_csptest_output(self, bad):
        with pytest.raises(AnsibleFilterError, match="not the output of"):
            cryptopro_containers(bad)

    def test_rejects_non_strings(self):
        with pytest.raises(AnsibleFilterError, match="got list"):
            cryptopro_containers([])


class TestCertmgrList:
    def test_reads_both_entries(self):
        result = cryptopro_certmgr_list(CERTMGR_LIST)
        assert result["ok"] is True
        first, second = result["certificates"]
        assert first["index"] == 1
        assert first["sha1"] == "0E4ECEBE79FFDB789FCEAA2A28CE20BDD205BD53"
        assert first["serial"] == "0120DEADBEEF"
        assert first["subject"].endswith("CN=ГБУЗ «МИАЦ»")
        assert first["issuer"] == "C=RU, CN=Test GOST CA"
        assert first["not_before"] == "2026-02-14T13:22:17Z"
        assert first["not_after"] == "2027-02-14T13:32:17Z"
        assert first["private_key_link"] is True
        assert first["provider_type"] == 80
        assert first["container"] == "HDIMAGE\\\\esia_77.000\\0E4E"
        assert first["extended_key_usage"] == ["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4"]
        assert second["sha1"] == "AABBCCDD11223344556677889900AABBCCDD1122"
        assert second["not_after"] == "2027-01-01T00:00:00Z"
        assert second["private_key_link"] is False
        assert second["container"] is None
        assert second["provider_type"] is None

    def test_csp4_field_names_and_hex_prefix(self):
        text = CERTMGR_LIST.replace("SHA1 Hash           : 0e4e", "SHA1 Hash           : 0x0e4e").replace(
            "Provider Info       : ProvType: 80", "Provider Info       : Provider Type: 81"
        )
        first = cryptopro_certmgr_list(text)["certificates"][0]
        assert first["sha1"].startswith("0E4E")
        assert first["provider_type"] == 81

    def test_empty_list_is_not_an_error(self):
        result = cryptopro_certmgr_list(CERTMGR_EMPTY)
        assert result == {"ok": True, "error_code": "0x00000000", "certificates": []}

    def test_failed_listing_keeps_its_code(self):
        result = cryptopro_certmgr_list("Cannot find object or property.\n[ErrorCode: 0x80092004]\n")
        assert result["ok"] is False
        assert result["error_code"] == "0x80092004"
        assert result["certificates"] == []

    def test_unparseable_date_is_none(self):
        text = CERTMGR_LIST.replace("14/02/2027  13:32:17 UTC", "someday")
        assert cryptopro_certmgr_list(text)["certificates"][0]["not_after"] is None

    @pytest.mark.parametrize("bad", ["", "1-------\nSubject : x\n"])
    def test_rejects_text_without_error_code(self, bad):
        with pytest.raises(AnsibleFilterError, match="no \\[ErrorCode\\] line"):
            cryptopro_certmgr_list(bad)

    def test_rejects_non_strings(self):
        with pytest.raises(AnsibleFilterError, match="got NoneType"):
            cryptopro_certmgr_list(None)


class TestLicense:
    def test_serial_with_dashes(self):
        text = (
            "License validity:\n4040E-Q000K-9KAC2-0RXAW-F5CZY\nExpires: 2 month(s) 29 day(s)\nLicense type: Server.\n"
        )
        result = cryptopro_license(text)
        assert result["serial"] == "4040E-Q000K-9KAC2-0RXAW-F5CZY"
        assert result["serial_normalized"] == "4040EQ000K9KAC20RXAWF5CZY"
        assert result["valid"] is True
        assert result["expires"] == "2 month(s) 29 day(s)"
        assert result["permanent"] is False
        assert result["type"] == "Server"

    def test_serial_without_dashes_and_permanent(self):
        text = "License validity:\n4040EQ000K9KAC20RXAWF5CZY\nExpires: permanent\nLicense type: Client.\n"
        result = cryptopro_license(text)
        assert result["serial_normalized"] == "4040EQ000K9KAC20RXAWF5CZY"
        assert result["permanent"] is True
        assert result["type"] == "Client"

    def test_expired_licence_is_not_valid(self):
        text = "License validity:\n4040EQ000K9KAC20RXAWF5CZY\nExpired\n"
        assert cryptopro_license(text)["valid"] is False

    @pytest.mark.parametrize("bad", ["", "Error code 0x80070057"])
    def test_rejects_output_without_serial(self, bad):
        with pytest.raises(AnsibleFilterError, match="no licence serial"):
            cryptopro_license(bad)

    def test_rejects_non_strings(self):
        with pytest.raises(AnsibleFilterError, match="got bytes"):
            cryptopro_license(b"License validity:")


# ------------------------------------------------------------ cryptopro_certificate / cryptopro_file_b64


@pytest.fixture(scope="module")
def gost_certs(tmp_path_factory):
    from tests.certs import gost_workdir, make_cert

    directory = gost_workdir(tmp_path_factory, "cryptopro-certificate")
    return {
        "256": make_cert(directory, "gost2012_256", name="k256"),
        "512": make_cert(directory, "gost2012_512", name="k512"),
    }


def test_cryptopro_certificate_describes_a_256_bit_certificate(gost_certs):
    from filter_plugins.cryptopro import cryptopro_certificate, cryptopro_file_b64

    der = cryptopro_file_b64(str(gost_certs["256"].der_path))
    assert base64.b64decode(der) == gost_certs["256"].der_path.read_bytes()
    info = cryptopro_certificate(der, 80, "/var/lib/x.cer")
    assert info["key_algorithm"] == "gost2012_256"
    # cpverify agreeing (any case, trailing newline) passes
    assert cryptopro_certificate(der, 80, "/var/lib/x.cer", info["streebog256"].lower() + "\n") == info


def test_cryptopro_certificate_refuses_a_key_of_another_size(gost_certs):
    from filter_plugins.cryptopro import cryptopro_certificate, cryptopro_file_b64

    der = cryptopro_file_b64(str(gost_certs["512"].der_path))
    with pytest.raises(AnsibleFilterError, match="carries a gost2012_512 key but cryptopro_provider_type 80"):
        cryptopro_certificate(der, 80, "/var/lib/x.cer")
    assert cryptopro_certificate(der, "81")["key_algorithm"] == "gost2012_512"


def test_cryptopro_certificate_names_esia_007053_when_cpverify_disagrees(gost_certs):
    from filter_plugins.cryptopro import cryptopro_certificate, cryptopro_file_b64

    der = cryptopro_file_b64(str(gost_certs["256"].der_path))
    with pytest.raises(AnsibleFilterError, match="ESIA-007053"):
        cryptopro_certificate(der, 80, "/var/lib/x.cer", "00" * 32)


def test_cryptopro_file_b64_names_a_missing_file(tmp_path):
    from filter_plugins.cryptopro import cryptopro_file_b64

    with pytest.raises(AnsibleFilterError, match=r"cannot read .*nothing on the controller"):
        cryptopro_file_b64(str(tmp_path / "nothing"))
