"""module_utils/esia_onboard/settings.py: the registry, the argument-spec loader, strict types,
role defaults; and ansible.cfg's pipelining for every connection."""

import configparser
import subprocess

import pytest
import yaml

from module_utils.esia_onboard import settings
from module_utils.esia_onboard.core import UNSET
from tests.harness import BIN, REPO, environment

SPECS = settings.load_specs(REPO / "roles")


def write_role(root, name, options):
    meta = root / name / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": {"main": {"options": options}}}))


def test_load_specs_merges_roles(tmp_path):
    write_role(
        tmp_path,
        "a",
        {
            "x_port": {"type": "int", "default": 53},
            "shared": {"type": "str", "choices": ["p", "q"]},
            "secret": {"type": "str", "no_log": True},
        },
    )
    write_role(tmp_path, "b", {"shared": {"type": "str", "required": True, "choices": ["q", "r"], "default": "q"}})
    specs = settings.load_specs(tmp_path)
    assert specs["shared"]["roles"] == ["a", "b"]
    assert specs["shared"]["required"] is True and specs["shared"]["choices"] == ["q"]
    assert specs["shared"]["default"] == "q"
    assert settings.public_names(specs) == ["shared", "x_port"]
    assert settings.secret_names(specs) == ["secret"]
    assert settings.role_names(specs, "b") == ["shared"]


def test_a_new_setting_is_checked_without_registering_anything(tmp_path):
    write_role(tmp_path, "new", {"new_port": {"type": "int", "default": 8080}, "new_flag": {"type": "bool"}})
    specs = settings.load_specs(tmp_path)
    assert settings.check_settings({}, specs)[0] == []
    problems, _ = settings.check_settings({"new_port": "80a", "new_flag": "false"}, specs)
    assert [p.split(":")[0] for p in problems] == ["new_flag", "new_port"]


@pytest.mark.parametrize(
    ("kind", "value", "ok", "converted"),
    [
        ("str", "x", True, "x"),
        ("str", 77, False, None),
        ("path", "/x", True, "/x"),
        ("bool", True, True, True),
        ("bool", "false", False, None),
        ("bool", 0, False, None),
        ("int", 5, True, 5),
        ("int", "5", True, 5),
        ("int", "-5", True, -5),
        ("int", True, False, None),
        ("int", "5.0", False, None),
        ("int", 5.0, False, None),
        ("float", 1, True, 1.0),
        ("float", "1.5", True, 1.5),
        ("float", False, False, None),
        ("float", "x", False, None),
        ("list", [1], True, [1]),
        ("list", "a,b", False, None),
        ("dict", {}, True, {}),
        ("dict", [], False, None),
        ("raw", object, True, object),
    ],
)
def test_strict_types(kind, value, ok, converted):
    problems, result = settings.check_type("s", value, {"type": kind})
    assert (problems == []) is ok
    if ok:
        assert result == converted


def test_elements_and_choices():
    spec = {"type": "list", "elements": "str", "choices": ["TLSv1.2", "TLSv1.3"]}
    assert settings.check_type("p", ["TLSv1.3"], spec) == ([], ["TLSv1.3"])
    assert settings.check_type("p", ["TLSv1"], spec)[0][0].startswith("p[0]:")
    assert "str expected" in settings.check_type("p", [5], spec)[0][0]
    assert settings.check_type("n", ["5"], {"type": "list", "elements": "int"}) == ([], [5])
    hinted = settings.check_type("cryptopro_provider_type", 75, SPECS["cryptopro_provider_type"])[0][0]
    assert "GOST 2001" in hinted and "use one of 80, 81" in hinted
    assert settings.check_type("cryptopro_provider_type", "81", SPECS["cryptopro_provider_type"]) == ([], 81)


def test_defaults_apply_and_templated_defaults_resolve():
    filled = settings.with_defaults({"portal_region_code": "77", "portal_service_home": "/var/lib/p"}, SPECS)
    assert filled["portal_domain_dns_port"] == 53
    assert filled["cryptopro_container"] == "esia_77"
    assert filled["cryptopro_export_dir"] == "/var/lib/p/esia"
    unresolved = settings.with_defaults({}, SPECS)
    assert "cryptopro_container" not in unresolved  # needs portal_region_code: left to the role
    assert settings.with_defaults({"portal_domain_ttl": UNSET}, SPECS)["portal_domain_ttl"] == 300
    assert settings.with_defaults({"portal_domain_ttl": None}, SPECS)["portal_domain_ttl"] == 300


def test_required_setting_left_out_names_its_roles():
    problems, _ = settings.check_settings({}, SPECS)
    mnemonic = [p for p in problems if p.startswith("esia_client_mnemonic:")]
    assert mnemonic and "required by esia_client" in mnemonic[0]


def test_only_keeps_the_named_settings():
    values = {"portal_domain_ttl": 0, "portal_https_http_port": 0}
    problems, _ = settings.check_settings(values, SPECS, only={"portal_domain_ttl"})
    assert [p.split(":")[0] for p in problems] == ["portal_domain_ttl"]


def test_problem_setting():
    assert settings.problem_setting("portal_org.ogrn: got '1'; x") == "portal_org"
    assert settings.problem_setting("portal_domain_aliases[0]: got 'x'; y") == "portal_domain_aliases"
    assert settings.problem_setting("portal_domain_ttl: got 0; z") == "portal_domain_ttl"


def test_registry_names_only_settings_that_exist():
    assert set(settings.RULES) <= set(SPECS), set(settings.RULES) - set(SPECS)
    assert set(settings.SECRET_RULES) <= set(settings.secret_names(SPECS))
    assert set(settings.CHOICE_HINTS) <= set(SPECS)


def test_shared_rules_name_the_setting_they_are_registered_under():
    for name in ("portal_https_http_port", "cryptopro_private_dir", "esia_client_probe_timeout"):
        (found,) = settings.RULES[name]("/" if "dir" in name else 0, {})
        assert found.startswith(name + ":"), found


def test_check_secrets_never_shows_a_value():
    found = settings.check_secrets({"cryptopro_pin": "abc", "portal_domain_tsig_secret": "s3cr3t!"}, SPECS)
    assert found and all("abc" not in p and "s3cr3t" not in p for p in found)
    assert settings.check_secrets({"cryptopro_pin": "abc"}, SPECS, only={"portal_domain_tsig_secret"}) == []


def test_pipelining_for_every_connection():
    config = configparser.ConfigParser()
    config.read(REPO / "ansible.cfg")
    assert config.getboolean("connection", "pipelining")
    assert config.getboolean("ssh_connection", "pipelining")
    dump = subprocess.run(
        [str(BIN / "ansible-config"), "dump", "--only-changed"],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ANSIBLE_PIPELINING(" in dump and "= True" in dump.split("ANSIBLE_PIPELINING(", 1)[1].splitlines()[0]


def test_which_connection_plugins_pipeline():
    from ansible.plugins.connection import local, ssh
    from ansible_collections.containers.podman.plugins.connection import podman

    assert ssh.Connection.has_pipelining and local.Connection.has_pipelining
    # The podman plugin cannot: with it, Ansible writes each module to a local temp file.
    # The lab therefore connects with ssh + tools/podman-ssh (inventories/lab/hosts.yml).
    assert not podman.Connection.has_pipelining
    lab = yaml.safe_load((REPO / "inventories" / "lab" / "hosts.yml").read_text())
    assert lab["all"]["children"]["portal"]["hosts"]["lab-portal"]["ansible_connection"] == "ssh"


def test_unknown_settings_are_warned_about():
    found = settings.unknown_settings(
        [
            "portal_domain_tll",
            "portal_domain_ttl",
            "cryptopro_pin",
            "__portal_x",
            "lab_bind_port",
            "portal_service_xyzzy_quux",
        ],
        SPECS,
    )
    assert found[0].startswith("portal_domain_tll:") and "did you mean portal_domain_ttl?" in found[0]
    assert found[1].startswith("portal_service_xyzzy_quux:") and "argument_specs" in found[1]
    assert len(found) == 2
