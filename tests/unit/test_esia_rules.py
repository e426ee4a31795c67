"""module_utils/esia_onboard/esia.py and its glue in filter_plugins/esia.py: the token algorithm
and ESIA's certificates (real certificates made with openssl), scope_org, the organisation type
and the standard-solutions deadline. Every date is passed in, so no test depends on today."""

# ruff: noqa: RUF001
# (the Регламент's organisation types are Russian)
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import filter_plugins.esia as glue
from tests.certs import gost_workdir, make_cert

rules = glue.esia_rules
UTC = dt.UTC


def info(key="gost2012_256", not_before="2026-01-01T00:00:00+00:00", not_after="2027-06-01T00:00:00+00:00"):
    return {"subject": "CN=ESIA", "key_algorithm": key, "not_before": not_before, "not_after": not_after}


# --- token algorithm and ESIA's certificates --------------------------------------------------


@pytest.mark.parametrize("value", ["GOST3410_2012_256", "RS256"])
def test_token_algorithms_of_the_technology_portal_pass(value):
    assert rules.token_alg_problems(value) == []


@pytest.mark.parametrize("value", ["gost", "RS512", "", None, 256])
def test_other_token_algorithms_are_refused_naming_the_setting(value):
    (text,) = rules.token_alg_problems(value)
    assert text.startswith("esia_client_token_alg:") and "RS256" in text


@pytest.mark.parametrize(("alg", "key"), [("GOST3410_2012_256", "rsa"), ("RS256", "gost2012_256")])
def test_certificate_key_type_must_match_the_token_algorithm(alg, key):
    found = rules.certificate_findings([{"path": "e.cer", "info": info(key)}], alg, "test", "2026-06-01")
    (text,) = found["problems"]
    assert "esia_client_esia_certificates" in text and alg in text and key in text


def test_old_and_new_certificate_at_once_warns_only_for_the_expiring_one():
    old = {"path": "esia-2025.cer", "info": info(not_after="2026-06-17T00:00:00+00:00")}
    new = {"path": "esia-2026.cer", "info": info(not_before="2026-05-01T00:00:00+00:00")}
    found = rules.certificate_findings([old, new], "GOST3410_2012_256", "prod", "2026-06-01", 30)
    assert found["problems"] == []
    (warning,) = found["warnings"]
    assert "esia-2025.cer" in warning and "16 day(s)" in warning
    assert [check["status"] for check in found["checks"]] == ["WARN", "OK"]


def test_prod_needs_one_currently_valid_certificate():
    expired = {"path": "old.cer", "info": info(not_after="2026-01-01T00:00:00+00:00")}
    future = {"path": "next.cer", "info": info(not_before="2027-01-01T00:00:00+00:00")}
    found = rules.certificate_findings([expired, future], "GOST3410_2012_256", "prod", "2026-06-01")
    assert any("production needs at least one currently valid" in text for text in found["problems"])
    assert rules.certificate_findings([expired, future], "GOST3410_2012_256", "test", "2026-06-01")["problems"] == []


def test_prod_without_any_certificate_is_refused_and_test_only_warned():
    assert rules.certificate_findings([], "RS256", "prod", "2026-06-01")["problems"]
    found = rules.certificate_findings([], "RS256", "test", "2026-06-01")
    assert found["problems"] == [] and "cannot verify ESIA's tokens" in found["warnings"][0]


def test_unreadable_certificate_is_a_problem_naming_the_file():
    found = rules.certificate_findings([{"path": "x.cer", "error": "not PEM"}], "RS256", "test", "2026-06-01")
    assert "x.cer" in found["problems"][0] and "not PEM" in found["problems"][0]


def test_certificate_list_shape():
    assert rules.certificate_list_problems(["a/esia.cer", "b/esia2.cer"]) == []
    assert rules.certificate_list_problems("a/esia.cer")
    assert "same file name" in rules.certificate_list_problems(["a/esia.cer", "b/esia.cer"])[0]
    assert rules.certificate_list_problems(["ok.cer", "two\nlines.cer", ""])[0].startswith(
        "esia_client_esia_certificates:"
    )


def test_targets_put_the_list_in_one_directory_and_keep_the_legacy_destination():
    targets = rules.certificate_targets(["/inv/files/esia-2026.cer"], "/etc/esia-portal/esia-certificates/",
                                        "/inv/old.cer", "/etc/esia-portal/esia-test.cer")  # fmt: skip
    assert targets == [
        {"src": "/inv/files/esia-2026.cer", "dest": "/etc/esia-portal/esia-certificates/esia-2026.cer"},
        {"src": "/inv/old.cer", "dest": "/etc/esia-portal/esia-test.cer"},
    ]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    directory = gost_workdir(tmp_path_factory, "esia-rules")
    now = dt.datetime.now(UTC)
    return {
        "gost": make_cert(directory, "gost2012_256", name="esia-gost", days=400).pem_path,
        "rsa": make_cert(directory, "rsa", name="esia-rsa", days=400).der_path,
        "soon": make_cert(
            directory,
            "gost2012_256",
            name="esia-soon",
            not_before=now - dt.timedelta(days=300),
            not_after=now + dt.timedelta(days=5),
        ).pem_path,
    }


def test_controller_files_are_read_pem_and_der(certificates):
    settings = {"esia_client_token_alg": "RS256", "esia_client_esia_certificates": [str(certificates["rsa"])]}
    assert glue.esia_client_problems(settings) == []
    settings["esia_client_token_alg"] = "GOST3410_2012_256"
    (text,) = glue.esia_client_problems(settings)
    assert "has a rsa key" in text


def test_rotation_on_the_controller_warns_ahead_of_expiry(certificates):
    settings = {
        "esia_client_environment": "prod",
        "esia_client_esia_certificates": [str(certificates["soon"]), str(certificates["gost"])],
    }
    assert glue.esia_client_problems(settings) == []
    warnings = glue.esia_client_warnings(settings)
    assert any("esia-soon" in text and "day(s)" in text for text in warnings)
    assert not any("esia-gost" in text for text in warnings)


def test_missing_controller_file_is_named(tmp_path):
    settings = {"esia_client_esia_certificates": [str(tmp_path / "nope.cer")]}
    (text,) = glue.esia_client_problems(settings)
    assert "nope.cer" in text and "cannot read it on the controller" in text


def test_legacy_single_source_still_counts_and_is_reported_deprecated(certificates):
    settings = {"esia_client_environment": "prod", "esia_client_esia_certificate_src": str(certificates["gost"])}
    assert glue.esia_client_problems(settings) == []
    assert any("deprecated" in text for text in glue.esia_client_warnings(settings))


def test_host_side_checks_from_slurp_results(certificates):
    import base64

    slurped = [
        {"source": "/etc/esia-portal/esia-certificates/a.cer",
         "content": base64.b64encode(certificates["gost"].read_bytes()).decode()},
        {"item": "/etc/esia-portal/esia-certificates/b.cer", "failed": True, "msg": "file not found"},
    ]  # fmt: skip
    checks = glue.esia_certificate_checks(slurped, "GOST3410_2012_256", "test", 30)
    assert [c["status"] for c in checks] == ["OK", "FAIL"]
    assert "file not found" in checks[1]["detail"]
    assert glue.esia_certificate_checks([], "GOST3410_2012_256", "test")[0]["status"] == "WARN"
    assert glue.esia_certificate_checks([], "GOST3410_2012_256", "prod")[0]["status"] == "FAIL"


# --- scope_org ----------------------------------------------------------------------------------


def test_org_scopes_in_esia_client_scopes_are_refused_with_the_fix():
    (text,) = rules.org_scope_problems(["openid", "fullname", "org_shortname", "http://esia.gosuslugi.ru/org_inn"], [])
    assert text.startswith("esia_client_scopes:") and "esia_client_org_scopes" in text and "org_inn" in text


def test_org_scopes_setting_takes_org_scopes_only():
    assert rules.org_scope_problems(["openid"], ["org_shortname", "org_ogrn?org_oid=1000000001"]) == []
    problems = rules.org_scope_problems(["openid"], ["fullname", "openid", 5])
    assert len(problems) == 3 and all(p.startswith("esia_client_org_scopes:") for p in problems)
    assert rules.org_scope_problems(["openid"], "org_ogrn")


def test_scope_org_needs_the_v2_flow():
    assert rules.org_scopes_api_problems(["org_ogrn"], "v1")
    assert rules.org_scopes_api_problems(["org_ogrn"], "v2") == []
    assert rules.org_scopes_api_problems([], "v1") == []


# --- organisation type ---------------------------------------------------------------------------


def test_every_type_of_the_reglament_passes_and_others_do_not():
    assert len(rules.ORG_TYPES) == 8
    for org_type in rules.ORG_TYPES:
        assert rules.org_type_problems(org_type) == []
    (text,) = rules.org_type_problems("ООО")
    assert text.startswith("portal_org.type:") and "Многофункциональный центр" in text
    assert rules.org_type_problems("государственное учреждение")  # spelt as listed


# --- the standard-solutions deadline ----------------------------------------------------------------


def settings(**values):
    return {"esia_client_environment": "prod", "esia_client_api_version": "v1", **values}


def test_v1_in_prod_is_refused_from_the_date():
    (text,) = rules.standard_solutions_problems(settings(), "2027-01-01")
    assert "esia_client_api_version" in text and rules.V1_OVERRIDE in text
    assert rules.standard_solutions_problems(settings(), "2026-12-31") == []


def test_the_named_override_lets_v1_through_and_must_be_a_boolean():
    assert rules.standard_solutions_problems(settings(**{rules.V1_OVERRIDE: True}), "2027-03-01") == []
    (text,) = rules.standard_solutions_problems(settings(**{rules.V1_OVERRIDE: "true"}), "2027-03-01")
    assert text.startswith(rules.V1_OVERRIDE)


def test_v1_in_test_and_v2_in_prod_are_not_refused():
    assert rules.standard_solutions_problems(settings(esia_client_environment="test"), "2027-03-01") == []
    assert rules.standard_solutions_problems(settings(esia_client_api_version="v2"), "2027-03-01") == []


def test_the_date_is_a_setting():
    moved = settings(esia_client_standard_solutions_date="2028-01-01")
    assert rules.standard_solutions_problems(moved, "2027-06-01") == []
    assert rules.standard_solutions_problems(moved, "2028-01-01")
    (text,) = rules.standard_solutions_problems(settings(esia_client_standard_solutions_date="1.1.2027"), "2027-06-01")
    assert text.startswith("esia_client_standard_solutions_date:")


def test_warnings_name_the_source_and_what_to_check():
    before = rules.standard_solutions_warnings(settings(esia_client_api_version="v2"), "2026-12-01")
    (text,) = before
    assert "in 31 day(s)" in text and "Source: shared/notes/esia.md" in text and "What to check" in text
    after = rules.standard_solutions_warnings(settings(), "2027-02-01")
    assert len(after) == 2 and "since 2027-01-01" in after[0] and "(passed)" in after[1]


# --- the catalogue and the role's declarations ----------------------------------------------------


def test_citizenship_and_usr_inf_are_unconfirmed_and_usr_inf_maps_from_its_uri():
    catalogue = glue.scope_catalogue()
    assert catalogue["citizenship"]["confirmed"] is False
    assert catalogue["usr_inf"]["confirmed"] is False
    assert glue.esia_scopes(["openid", "http://esia.gosuslugi.ru/usr_inf"]) == ["openid", "usr_inf"]


NEW_SETTINGS = {
    "esia_client_token_alg": "GOST3410_2012_256",
    "esia_client_esia_certificates": [],
    "esia_client_org_scopes": [],
    "esia_client_standard_solutions_date": "2027-01-01",
    "esia_client_allow_v1_after_standard_solutions_date": False,
}


def test_new_settings_are_declared_with_the_same_default_in_spec_and_defaults():
    import yaml

    role = Path(glue.__file__).resolve().parents[1] / "roles" / "esia_client"
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options = spec["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text(encoding="utf-8"))
    for name, default in NEW_SETTINGS.items():
        assert options[name]["default"] == default == defaults[name], name
        assert options[name]["description"]
    assert options["esia_client_token_alg"]["choices"] == list(rules.TOKEN_ALGORITHMS)


def test_registry_signatures_without_the_filter(certificates):
    """The functions settings.py registers work on plain settings, with the toolkit's own parser."""
    settings = {"esia_client_environment": "prod", "esia_client_token_alg": "RS256",
                "esia_client_esia_certificates": [str(certificates["gost"])]}  # fmt: skip
    mismatch, none_valid = rules.certificate_files_cross(settings)
    assert "has a gost2012_256 key" in mismatch and "production needs" in none_valid
    assert rules.token_alg_rule("RS256", settings) == []
    assert rules.org_scopes_rule(["org_ogrn"], {"esia_client_scopes": ["openid"], "esia_client_api_version": "v1"})
    assert rules.portal_org_type_rule({"portal_org": {"type": "Иная организация"}}) == []
    assert rules.standard_solutions_date_rule("2027-13-01", settings)
