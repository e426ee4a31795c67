"""filter_plugins/validate.py (the glue of module_utils/esia_onboard/settings.py): every bad
value is named with its variable and a fix; the shipped inventories pass; role defaults
apply; secrets are checked without ever being shown."""

from pathlib import Path

import pytest
import yaml

from filter_plugins import validate
from filter_plugins.validate import inn_valid, ogrn_valid, portal_config_problems

REPO = Path(__file__).resolve().parents[2]


def inventory_config(name: str) -> dict:
    merged: dict = {}
    for path in sorted((REPO / "inventories" / name / "group_vars" / "all").glob("*.yml")):
        if path.read_bytes().startswith(b"$ANSIBLE_VAULT"):
            continue
        merged.update(yaml.safe_load(path.read_text()) or {})
    if name == "lab":  # the lab's templated values, resolved as Ansible would
        merged["portal_domain_dns_port"] = merged["lab_bind_port"]
        merged["portal_domain_resolvers"] = [f"127.0.0.1:{merged['lab_bind_port']}"]
    inventory_dir = str(REPO / "inventories" / name)
    merged = {
        key: value.replace("{{ inventory_dir }}", inventory_dir) if isinstance(value, str) else value
        for key, value in merged.items()
    }
    # Other templates (vault variables, role defaults) are Ansible's to resolve.
    return {key: value for key, value in merged.items() if not (isinstance(value, str) and "{{" in value)}


@pytest.fixture
def region77() -> dict:
    return inventory_config("region77")


@pytest.mark.parametrize("inventory", ["region77", "lab"])
def test_shipped_inventories_pass(inventory):
    assert portal_config_problems(inventory_config(inventory)) == []


def problems_for(config: dict, **changes) -> list[str]:
    changed = dict(config)
    for key, value in changes.items():
        if value is KeyError:
            changed.pop(key, None)
        else:
            changed[key] = value
    return portal_config_problems(changed)


BAD_VALUES = [
    ("portal_region_code", 77, "quoted string"),
    ("portal_region_code", "77\n", "quoted string"),
    ("portal_region_code", "7", "quoted string"),
    ("portal_region_code", KeyError, "not set"),
    ("portal_domain_name", "zapis.example.org", "inside portal_domain_zone"),
    ("portal_domain_name", "77.2dr.ru", "8-FZ"),
    ("portal_domain_name", "zapis.miac77.2dr.ru", "8-FZ"),
    ("portal_domain_zone", "2dr.ru", "8-FZ"),
    ("portal_domain_name", "not a name", "host name"),
    ("portal_domain_fallback", "78.2dr.ru", "'77.2dr.ru'"),
    ("portal_domain_fallback", "zapis.miac77.ru", "'77.2dr.ru'"),
    ("portal_domain_address", "203.0.113", "IPv4"),
    ("portal_domain_dns_server", "ns1.miac77.ru", "IP address"),
    ("portal_domain_dns_port", 70000, "port number"),
    ("portal_domain_tsig_algorithm", "hmac-sha999", "hmac-sha256"),
    ("portal_domain_resolvers", ["dns.example:53"], "ip:port"),
    ("portal_domain_resolvers", "127.0.0.1:53", "list"),
    ("portal_https_certificate_source", "letsencrypt", "provided"),
    ("portal_https_fallback_certificate_source", "letsencrypt", "ownca"),
    ("portal_https_fallback_mode", "proxy", "redirect"),
    ("portal_https_key_type", "dsa", "ecdsa"),
    ("cryptopro_backend", "vipnet", "openssl_gost"),
    ("cryptopro_provider_type", 75, "GOST 2001"),
    ("cryptopro_provider_type", True, "int expected"),
    ("cryptopro_provider_type", "80", None),
    ("cryptopro_container", "esia 77", "container name"),
    ("esia_client_environment", "production", "prod"),
    ("esia_client_api_version", "v3", "v2"),
    ("esia_client_mnemonic", "", "mnemonic"),
    ("esia_client_mnemonic", KeyError, "mnemonic"),
    ("esia_client_scopes", ["openid", "fulname"], "fullname"),
    ("esia_client_scopes", ["fullname"], "openid"),
    ("esia_client_scopes", [], "esia_client_scopes"),
    ("portal_service_user", "Esia Portal", "system account"),
    ("portal_service_home", "var/lib/x", "absolute path"),
    ("portal_service_home", "/etc", "directory of the system"),
    ("portal_service_home", "/", "directory of the system"),
    ("portal_service_home", "/var/lib/../etc", "'..'"),
    ("portal_service_home", "/home/ivan", "person's home"),
    ("portal_service_home", "/tmp/esia", "not kept"),
    ("portal_service_user", "root", "dedicated account"),
    ("portal_service_user", "www-data", "dedicated account"),
    ("portal_service_group", "sudo", "dedicated group"),
    ("portal_domain_name", "miac77.ru", "apex"),
    ("portal_domain_name", "zapis.miac77.ru\n", "host name"),
    ("portal_domain_name", "zapis .miac77.ru", "host name"),
    ("portal_domain_aliases", ["www.miac77.ru", "miac77.ru"], "apex"),
    ("portal_domain_aliases", ["www.elsewhere.ru"], "inside portal_domain_zone"),
    ("portal_domain_aliases", ["77.2dr.ru"], "inside portal_domain_zone"),
    ("portal_domain_address", "0.0.0.0", "unspecified"),
    ("portal_domain_address", "255.255.255.255", "broadcast"),
    ("portal_domain_address", "224.0.0.1", "multicast"),
    ("portal_domain_address6", "203.0.113.10", "IPv6"),
    ("portal_domain_address6", "ff02::1", "multicast"),
    ("portal_domain_dns_port", "false", "int expected"),
    ("portal_domain_dns_port", True, "int expected"),
    ("portal_domain_dns_port", "\uff15\uff13", "int expected"),  # full-width digits
    ("portal_domain_ttl", 0, "TTL"),
    ("portal_domain_ttl", -300, "TTL"),
    ("portal_domain_tsig_algorithm", "hmac-md5", "weak"),
    ("portal_domain_require_national_tld", "false", "true or false"),
    ("portal_domain_resolvers", ["2001:db8::53:53"], None),
    ("portal_domain_resolvers", ["[2001:db8::53]:53"], None),
    ("portal_domain_resolvers", ["[203.0.113.1]:53"], "ip:port"),
    ("portal_https_upstream", "http://127.0.0.1:8080; } location / {", "http(s)://host"),
    ("portal_https_upstream", "http://127.0.0.1:8080", None),
    ("portal_https_extra_names", ["www.miac77.ru;"], "host name"),
    ("portal_https_resolvers", ["192.0.2.53 valid=30s"], "resolver"),
    ("portal_https_resolvers", ["[2001:db8::53]:53"], None),
    ("esia_client_redirect_path", "esia/callback", "starts with '/'"),
    ("esia_client_logout_redirect_path", "/ x", "starts with '/'"),
    ("cryptopro_distribution_sha256", "abc", "64 hex"),
    ("portal_https_csr_subject", {"countryName": "RUS"}, "two-letter"),
    ("portal_https_csr_subject", {"organizationName": "x" * 65}, "at most 64"),
    ("cryptopro_subject", [{"type": "CN", "value": "x" * 65}], "at most 64"),
    ("esia_client_is_name", "two\nlines", "one line"),
]


@pytest.mark.parametrize(("variable", "value", "hint"), BAD_VALUES)
def test_each_bad_value_is_named_with_a_fix(region77, variable, value, hint):
    problems = problems_for(region77, **{variable: value})
    matching = [p for p in problems if p.split(":", 1)[0].split("[")[0].split(".")[0] == variable]
    if hint is None:  # a valid value of a documented form
        assert matching == [], matching
        return
    assert matching, f"no problem reported for {variable}={value!r}: {problems}"
    assert any(hint in p for p in matching), matching


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("ogrn", "1027700000007", "check digit"),
        ("ogrn", "102770000000", "13-digit"),
        ("inn", "7700000008", "check digit"),
        ("inn", 7700000009, "10-digit"),
        ("name", "", "name"),
        ("contact", {"name": "X", "email": "not-an-email", "phone": "+7 495 000-00-00"}, "e-mail"),
        ("contact", {"name": "X", "email": "a@b.ru\n", "phone": "+7 495 000-00-00"}, "e-mail"),
        ("contact", {"name": "X", "email": "a@b.ru", "phone": "+7 495 000-00-00; rm"}, "phone"),
        ("name", "two\nlines", "one line"),
        ("ogrn", "3027700000008", "starts with 1 or 5"),
    ],
)
def test_organisation_block(region77, field, value, hint):
    org = {**region77["portal_org"], field: value}
    problems = problems_for(region77, portal_org=org)
    assert any(p.startswith("portal_org.") and hint in p for p in problems), problems


def test_all_problems_reported_at_once(region77):
    problems = problems_for(
        region77, portal_region_code="7", cryptopro_provider_type=75, esia_client_environment="stage"
    )
    named = {p.split(":", 1)[0] for p in problems}
    assert {"portal_region_code", "cryptopro_provider_type", "esia_client_environment"} <= named


def test_national_tld_is_optional(region77):
    foreign = {"portal_domain_zone": "miac77.org", "portal_domain_name": "zapis.miac77.org"}
    assert problems_for(region77, **foreign, portal_domain_require_national_tld=False) == []
    assert problems_for(region77, **foreign, portal_domain_require_national_tld=KeyError) == []
    assert any("national" in p for p in problems_for(region77, **foreign, portal_domain_require_national_tld=True))


def test_checksums_against_published_examples():
    # OGRN and INN of the Federal Tax Service itself (public register data).
    assert ogrn_valid("1047707030513")
    assert inn_valid("7707329152")
    assert not ogrn_valid("1047707030514")
    assert not inn_valid("7707329153")


def test_rejects_non_mapping():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        portal_config_problems(["not", "a", "mapping"])


def test_fallback_hint_does_not_build_on_a_bad_region_code(region77):
    problems = problems_for(region77, portal_region_code="7", portal_domain_fallback="7.2dr.ru")
    fallback = [p for p in problems if p.startswith("portal_domain_fallback:")]
    assert fallback and "'7.2dr.ru'" not in fallback[0].split(";", 1)[1], fallback


def with_region77(**changes) -> dict:
    config = inventory_config("region77")
    config.update(changes)
    return config


def test_role_defaults_fill_what_the_inventory_leaves_out(region77):
    minimal = {
        key: value
        for key, value in region77.items()
        if key
        in {
            "portal_region_code",
            "portal_org",
            "portal_service_user",
            "portal_service_group",
            "portal_service_home",
            "portal_domain_name",
            "portal_domain_zone",
            "portal_domain_fallback",
            "portal_domain_address",
            "portal_domain_dns_server",
            "portal_domain_tsig_name",
            "esia_client_mnemonic",
            # no default can stand in for the vendor's gamma on the cryptopro backend
            "cryptopro_rng_gamma_file",
        }
    }
    assert portal_config_problems(minimal) == []
    without_gamma = {key: value for key, value in minimal.items() if key != "cryptopro_rng_gamma_file"}
    assert [p for p in portal_config_problems(without_gamma) if p.startswith("cryptopro_rng_gamma_file:")]
    # A role default is judged too: the container default is esia_<region code>.
    missing = dict(minimal)
    del missing["esia_client_mnemonic"]
    assert [p for p in portal_config_problems(missing) if "esia_client_mnemonic" in p]


def test_public_settings_are_every_argument_spec_option():
    roles = REPO / "roles"
    declared = set()
    for spec_file in roles.glob("*/meta/argument_specs.yml"):
        options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]["options"]
        declared |= {name for name, option in options.items() if not option.get("no_log")}
    assert set(validate.portal_setting_names("public")) == declared
    assert "cryptopro_pin" in validate.portal_setting_names("secret")
    assert "portal_https_upstream" in validate.portal_setting_names("portal_https")
    with pytest.raises(Exception, match="no role"):
        validate.portal_setting_names("no_such_role")


class LazyVars(dict):
    """Like Ansible's lazy vars: reading a value whose template fails raises."""

    def __init__(self, values: dict, broken: set[str]):
        super().__init__(values)
        self.broken = broken

    def __getitem__(self, key):
        if key in self.broken:
            raise RuntimeError(f"{key}: 'vault_x' is undefined")
        return super().__getitem__(key)


def test_unresolvable_public_setting_is_a_warning_not_a_crash(region77):
    values = LazyVars({**region77, "portal_https_acme_ca_bundle": "x"}, {"portal_https_acme_ca_bundle"})
    result = validate.portal_settings_check(values, host="portal77")
    assert result["problems"] == []
    assert any(w.startswith("portal_https_acme_ca_bundle: not checked") for w in result["warnings"])
    assert result["message"] == "portal77: configuration is valid"


def test_message_names_host_and_count(region77):
    result = validate.portal_settings_check({**region77, "portal_domain_ttl": 0}, host="portal77")
    assert result["message"].startswith("portal77: 1 problem(s) in the inventory; nothing was changed on any host.")
    assert "\n  - portal_domain_ttl: got 0;" in result["message"]


def test_role_check_keeps_only_the_role_settings(region77):
    values = {**region77, "portal_domain_ttl": 0, "portal_https_upstream": "http://x;"}
    https = validate.portal_role_check(values, "portal_https", "portal77")
    assert [p.split(":")[0] for p in https["problems"]] == ["portal_https_upstream"]
    assert "role portal_https" in https["message"]
    domain = validate.portal_role_check(values, "portal_domain", "portal77")
    named = [p.split(":")[0] for p in domain["problems"]]
    assert "portal_domain_ttl" in named and "portal_https_upstream" not in named
    assert validate.portal_role_check(region77, "portal_base")["problems"] == []


TSIG = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="  # 32 bytes


def test_secrets_checked_when_the_vault_is_loaded(region77):
    good = {**region77, "vault_x": 1, "portal_domain_tsig_secret": TSIG, "cryptopro_pin": "12345678"}
    assert validate.portal_secrets_check(good)["problems"] == []
    bad = {**good, "portal_domain_tsig_secret": "not base64!", "cryptopro_pin": "1234\n"}
    problems = validate.portal_secrets_check(bad)["problems"]
    assert {p.split(":")[0] for p in problems} == {"portal_domain_tsig_secret", "cryptopro_pin"}
    assert all("not base64!" not in p and "1234" not in p for p in problems)


def test_vault_not_loaded_is_told_from_secret_missing(region77):
    # The inventory names vault variables, but no vault_* variable is defined: not checked.
    unloaded = LazyVars(
        {**region77, "portal_domain_tsig_secret": "t", "cryptopro_pin": "t"},
        {"portal_domain_tsig_secret", "cryptopro_pin"},
    )
    result = validate.portal_secrets_check(unloaded)
    assert result["problems"] == []
    assert set(result["unchecked"]) == {"portal_domain_tsig_secret", "cryptopro_pin"}
    # A vault is loaded but does not define the variable: a problem.
    loaded = LazyVars({**unloaded, "vault_other": "x"}, unloaded.broken)
    problems = validate.portal_secrets_check(loaded)["problems"]
    assert {p.split(":")[0] for p in problems} == {"portal_domain_tsig_secret", "cryptopro_pin"}
    # Nothing defines a required secret at all: a problem with or without the vault.
    missing = validate.portal_secrets_check(region77)["problems"]
    assert {p.split(":")[0] for p in missing} >= {"portal_domain_tsig_secret", "cryptopro_pin"}


def test_private_key_only_with_provided(region77):
    values = {
        **region77,
        "vault_x": 1,
        "portal_domain_tsig_secret": TSIG,
        "cryptopro_pin": "12345678",
        "portal_https_certificate_source": "ownca",
        "portal_https_private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    }
    problems = validate.portal_secrets_check(values)["problems"]
    assert any(p.startswith("portal_https_private_key:") and "provided" in p for p in problems), problems
    assert any("does not load" in p for p in problems), problems


def test_account_and_rdn_filters():
    passwd = {"esia-portal": ["x", "998", "998", "", "/var/lib/esia-portal", "/usr/sbin/nologin"]}
    assert validate.portal_account_problems(passwd, "esia-portal", "/var/lib/esia-portal") == []
    assert validate.portal_account_problems(passwd, "esia-portal", "/srv/other")
    assert validate.rdn_escape("ГБУЗ, «МИАЦ»") == "ГБУЗ\\, «МИАЦ»"
    assert set(validate.FilterModule().filters()) >= {"portal_settings_check", "portal_role_check", "rdn_escape"}


def test_service_user_is_not_the_connecting_user(region77):
    problems = problems_for(region77, portal_service_user="ansible", ansible_user="ansible")
    assert any(p.startswith("portal_service_user:") and "connects as (ansible_user)" in p for p in problems)
    assert problems_for(region77, ansible_user="ansible") == []


def test_secret_left_out_is_judged_by_its_default(region77):
    # acme with an EAB key id but no HMAC key (and no account key) in the vault:
    # both named by validate.yml, not first by the role on the host.
    values = {
        **region77,
        "vault_x": 1,
        "portal_domain_tsig_secret": TSIG,
        "cryptopro_pin": "12345678",
        "portal_https_certificate_source": "acme",
        "portal_https_acme_directory": "https://acme.example.ru/directory",
        "portal_https_acme_eab_kid": "kid-1",
    }
    named = {p.split(":")[0] for p in validate.portal_secrets_check(values)["problems"]}
    assert named == {"portal_https_acme_eab_hmac_key", "portal_https_acme_account_key"}, named


def _action_plugin():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "portal_settings_check_action", REPO / "plugins" / "action" / "portal_settings_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_action_refuses_an_inventory_without_portal_hosts_and_names_the_others():
    action = _action_plugin()
    refused = action.inventory_check({"all": ["portal77"], "ungrouped": ["portal77"]})
    assert refused["failed"] and "no host in the group `portal`" in refused["msg"] and "portal77" in refused["msg"]
    assert "hosts found: none" in action.inventory_check({"all": []})["msg"]
    passed = action.inventory_check({"all": ["p1", "db"], "portal": ["p1"]})
    assert not passed.get("failed")
    assert passed["warnings"] == ["Hosts outside the group `portal` are not checked or configured: db."]
    assert "warnings" not in action.inventory_check({"all": ["p1"], "portal": ["p1"]})


def test_action_reads_each_value_through_the_templar_and_the_glue_sees_a_failed_template_as_unresolved(region77):
    action = _action_plugin()

    class Templar:
        def template(self, value):
            if value == "{{ vault_missing }}":
                raise ValueError("undefined")
            return value.replace("{{ zone }}", "miac77.ru") if isinstance(value, str) else value

    values = action.TemplatedVars(
        {**region77, "portal_domain_zone": "{{ zone }}", "cryptopro_pin": "{{ vault_missing }}"}, Templar()
    )
    assert values["portal_domain_zone"] == "miac77.ru"
    assert action.glue().portal_settings_check(values, host="portal77")["problems"] == []
    secrets = action.glue().portal_secrets_check(values, host="portal77")
    assert "cryptopro_pin" in secrets["unchecked"]
    assert not any(p.startswith("cryptopro_pin") for p in secrets["problems"])


def test_action_hides_the_text_of_an_error_inside_a_secret_rule(monkeypatch):
    action = _action_plugin()

    def broken(values, host=None):
        raise ValueError("s3cr3t-value")

    monkeypatch.setattr(action.glue(), "portal_secrets_check", broken)
    plugin = object.__new__(action.ActionModule)
    plugin._task = type("Task", (), {"args": {"check": "secrets"}, "async_val": 0, "check_mode": False})()
    monkeypatch.setattr(action.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    plugin._templar = None
    result = plugin.run(task_vars={"inventory_hostname": "portal77"})
    assert result["failed"] and "ValueError" in result["msg"] and "s3cr3t" not in result["msg"]
