"""esia_scopes / esia_scope_string / esia_scope_details against scope lists typed from the sources.

The lists below are copied from the seed procedure and shared/notes/esia.md,
not from the catalogue, so a scope missing from the catalogue fails here.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from filter_plugins import esia
from filter_plugins.esia import (
    FilterModule,
    esia_scope_details,
    esia_scope_string,
    esia_scopes,
    scope_catalogue_markdown,
)
from tests.seed import SEED_SCOPES

OTHER_PERSON_SCOPES = [
    "military_doc",
    "foreign_passport_doc",
    "residence_doc",
    "temporary_residence_doc",
    "vehicles",
    "addresses",
    "citizenship",
    "usr_avt",
    "self_employed",
    "categories",
]
ORGANISATION_SCOPES = [
    "org_shortname",
    "org_fullname",
    "org_type",
    "org_ogrn",
    "org_inn",
    "org_leg",
    "org_kpp",
    "org_agencyterrange",
    "org_agencytype",
    "org_oktmo",
    "org_ctts",
    "org_addrs",
    "org_vhls",
    "org_grps",
    "org_emps",
    "org_brhs",
    "org_brhs_ctts",
    "org_brhs_addrs",
    "org_rcs",
    "org_stms",
    "org_invts",
    "org_ra",
]


def error_of(scopes, extra=None) -> str:
    with pytest.raises(AnsibleFilterError) as caught:
        esia_scopes(scopes, extra)
    return str(caught.value)


def test_seed_list_passes_unchanged():
    assert len(SEED_SCOPES) == 22
    assert esia_scopes(SEED_SCOPES) == SEED_SCOPES


@pytest.mark.parametrize("scope", OTHER_PERSON_SCOPES + ORGANISATION_SCOPES)
def test_every_known_scope_is_in_the_catalogue(scope):
    assert esia_scopes(["openid", scope]) == ["openid", scope]


def test_openid_moves_first_and_the_rest_keeps_its_order():
    assert esia_scopes(["snils", "fullname", "openid", "email"]) == ["openid", "snils", "fullname", "email"]


def test_duplicates_are_dropped_keeping_the_first():
    assert esia_scopes(["fullname", "openid", "snils", "fullname", "openid", "snils"]) == [
        "openid",
        "fullname",
        "snils",
    ]


def test_scope_string_is_space_joined():
    assert esia_scope_string(["email", "openid", "fullname", "email"]) == "openid email fullname"


def test_scope_string_raises_like_esia_scopes():
    with pytest.raises(AnsibleFilterError, match="fulname"):
        esia_scope_string(["openid", "fulname"])


def test_accepts_tuples():
    assert esia_scopes(("fullname", "openid")) == ["openid", "fullname"]


def test_unknown_scopes_are_all_named_with_a_suggestion():
    message = error_of(["openid", "fulname", "snlis", "kid_snils", "qqqqqqqq"])
    assert "'fulname' (did you mean 'fullname'?)" in message
    assert "'snlis' (did you mean 'snils'?)" in message
    assert "'qqqqqqqq' (no similar known scope)" in message
    assert "kid_snils" not in message
    assert "3 problem(s)" in message


def test_suggestion_ignores_case():
    assert "did you mean 'openid'?" in error_of(["OpenID"])


def test_non_string_items_are_named_with_their_position():
    message = error_of(["openid", 42, None, ["fullname"]])
    assert "item 1 is int (42)" in message
    assert "item 2 is NoneType (None)" in message
    assert "item 3 is list" in message


def test_missing_openid():
    assert "'openid' is missing" in error_of(["fullname", "snils"])


def test_missing_openid_reported_together_with_unknown_names():
    message = error_of(["fulname"])
    assert "fulname" in message
    assert "'openid' is missing" in message


def test_empty_list():
    assert "empty" in error_of([])


@pytest.mark.parametrize("bad_input", ["openid fullname", b"openid", None, 42, {"openid": True}])
def test_input_that_is_not_a_list(bad_input):
    message = error_of(bad_input)
    assert "expects a list of scope names" in message
    assert type(bad_input).__name__ in message


def test_string_input_hints_at_split():
    assert "split" in error_of("openid fullname")


@pytest.mark.parametrize("item", ["openid fullname", "", " fullname", "fullname\t", "full\nname"])
def test_whitespace_or_empty_item(item):
    assert "whitespace" in error_of(["openid", item])


@pytest.mark.parametrize(
    "item", ["fullname?", "fullname?oid", "fullname?=1", "fullname?oid=1&", "full-name", "fullname#x"]
)
def test_malformed_item(item):
    assert "is not a scope name" in error_of(["openid", item])


@pytest.mark.parametrize(
    "scope", ["fullname?oid=123", "org_shortname?org_oid=1000298981", "prm_chg?oid=123", "org_emps?org_oid=1&x=y"]
)
def test_parameterised_forms_are_kept_as_written(scope):
    assert esia_scopes([scope, "openid"]) == ["openid", scope]


def test_parameterised_and_plain_forms_are_different_scopes():
    assert esia_scopes(["openid", "fullname", "fullname?oid=1", "fullname?oid=1"]) == [
        "openid",
        "fullname",
        "fullname?oid=1",
    ]


def test_parameterised_unknown_base_is_rejected():
    assert "unknown scope 'fulname?oid=1' (did you mean 'fullname'?)" in error_of(["openid", "fulname?oid=1"])


def test_openid_takes_no_parameters():
    message = error_of(["openid?oid=1", "fullname"])
    assert "openid takes no parameters" in message
    assert "'openid' is missing" in message


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("http://esia.gosuslugi.ru/usr_inf", "usr_inf"),
        ("https://esia.gosuslugi.ru/fullname", "fullname"),
        ("http://esia-portal1.test.gosuslugi.ru/snils", "snils"),
        ("http://esia.gosuslugi.ru/openid", "openid"),
    ],
)
def test_legacy_uri_becomes_the_short_name(uri, name):
    assert name in esia_scopes([uri, "openid"])


def test_legacy_uri_duplicates_collapse():
    assert esia_scopes(["openid", "fullname", "http://esia.gosuslugi.ru/fullname"]) == ["openid", "fullname"]


@pytest.mark.parametrize(
    "uri", ["http://esia.gosuslugi.ru/fulname", "http://example.org/fullname", "http://esia.gosuslugi.ru.evil/fullname"]
)
def test_legacy_uri_with_unknown_name_or_host_is_rejected(uri):
    error_of(["openid", uri])


def test_extra_names_are_accepted():
    assert esia_scopes(["openid", "new_scope", "new_scope?oid=5"], ["new_scope"]) == [
        "openid",
        "new_scope",
        "new_scope?oid=5",
    ]
    assert esia_scope_string(["new_scope", "openid"], ["new_scope"]) == "openid new_scope"


def test_extra_names_do_not_leak_between_calls():
    esia_scopes(["openid", "new_scope"], ["new_scope"])
    assert "new_scope" in error_of(["openid", "new_scope"])


@pytest.mark.parametrize("extra", ["new_scope", 42, [42], ["new scope"], ["a?b=c"], [""]])
def test_bad_extra_names(extra):
    assert "extra allowed names" in error_of(["openid"], extra)


def test_details_carry_catalogue_descriptions():
    details = esia_scope_details(["medical_doc", "openid", "org_shortname?org_oid=1", "kid_snils"])
    assert [d["scope"] for d in details] == ["openid", "medical_doc", "org_shortname?org_oid=1", "kid_snils"]
    assert [d["name"] for d in details] == ["openid", "medical_doc", "org_shortname", "kid_snils"]
    assert [d["group"] for d in details] == ["system", "person", "organisation", "children"]
    medical = details[1]
    assert "ОМС" in medical["ru"]  # noqa: RUF001 (Cyrillic on purpose)
    assert "OMS" in medical["en"]
    assert medical["seed"] is True
    assert details[2]["seed"] is False


def test_details_of_extra_names():
    (_, extra) = esia_scope_details(["openid", "new_scope"], ["new_scope"])
    assert extra == {
        "name": "new_scope",
        "scope": "new_scope",
        "group": "extra",
        "ru": "",
        "en": "",
        "seed": False,
        "confirmed": False,
    }


def test_every_seed_scope_is_marked_seed_and_nothing_else_is():
    details = esia_scope_details(SEED_SCOPES + OTHER_PERSON_SCOPES + ORGANISATION_SCOPES)
    assert {d["name"] for d in details if d["seed"]} == set(SEED_SCOPES)


def test_every_scope_has_both_descriptions():
    for detail in esia_scope_details(SEED_SCOPES + OTHER_PERSON_SCOPES + ORGANISATION_SCOPES):
        assert detail["ru"].strip()
        assert detail["en"].strip()
        assert detail["group"] in {"system", "person", "children", "organisation", "legacy"}


def test_kid_scopes_are_in_the_children_group():
    details = esia_scope_details(["openid", *[s for s in SEED_SCOPES if s.startswith("kid_")]])
    assert {d["group"] for d in details[1:]} == {"children"}


def test_filters_are_registered_under_their_public_names():
    filters = FilterModule().filters()
    assert filters["esia_scopes"] is esia_scopes
    assert filters["esia_scope_string"] is esia_scope_string
    assert filters["esia_scope_details"] is esia_scope_details


# --- the catalogue file and the generated docs -----------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "filter_plugins" / "data" / "esia_scope_catalogue.yml"


def test_catalogue_entries_are_well_formed():
    data = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    groups = [group["name"] for group in data["groups"]]
    names = [entry["name"] for entry in data["scopes"]]
    assert len(names) == len(set(names)), "duplicate scope names"
    assert len(groups) == len(set(groups)), "duplicate group names"
    for entry in data["scopes"]:
        assert set(entry) == {"name", "group", "ru", "en", "seed", "confirmed"}, entry
        assert re.fullmatch(r"[a-z][a-z0-9_]*", entry["name"]), entry
        assert entry["group"] in groups, entry
        assert isinstance(entry["seed"], bool)
        assert isinstance(entry["confirmed"], bool)


def test_docs_are_rendered_from_the_current_catalogue():
    rendered = subprocess.run(
        [sys.executable, "-m", "filter_plugins.esia"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert (REPO / "docs" / "scopes.md").read_text(encoding="utf-8") == rendered, (
        "docs/scopes.md is stale: python -m filter_plugins.esia > docs/scopes.md"
    )


def test_docs_list_every_scope_and_the_seed_list():
    text = scope_catalogue_markdown()
    for scope in SEED_SCOPES + OTHER_PERSON_SCOPES + ORGANISATION_SCOPES:
        assert f"| `{scope}` |" in text
    assert " ".join(SEED_SCOPES) in text
    assert "22 scopes" in text


def test_unreadable_catalogue_is_a_filter_error(monkeypatch, tmp_path):
    broken = tmp_path / "catalogue.yml"
    broken.write_text("groups: [\n", encoding="utf-8")
    monkeypatch.setattr(esia, "_CATALOGUE_PATH", broken)
    esia._catalogue_data.cache_clear()
    try:
        with pytest.raises(AnsibleFilterError, match="cannot read the scope catalogue"):
            esia_scopes(["openid"])
        monkeypatch.setattr(esia, "_CATALOGUE_PATH", tmp_path / "missing.yml")
        with pytest.raises(AnsibleFilterError, match="cannot read the scope catalogue"):
            esia_scopes(["openid"])
    finally:
        esia._catalogue_data.cache_clear()
