"""Property tests for scope normalisation (hypothesis)."""

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given
from hypothesis import strategies as st

from filter_plugins.esia import esia_scopes
from tests.seed import SEED_SCOPES

# Typed from the seed and shared/notes/esia.md, not read from the catalogue.
KNOWN = [
    *SEED_SCOPES,
    "military_doc",
    "vehicles",
    "addresses",
    "org_shortname",
    "org_ogrn",
    "org_inn",
    "org_emps",
]
PARAMETERISED = ["fullname?oid=1", "fullname?oid=2", "org_shortname?org_oid=7", "prm_chg?oid=3"]

scope_lists = st.lists(st.sampled_from(KNOWN + PARAMETERISED), min_size=0, max_size=40).map(lambda xs: [*xs, "openid"])
shuffled_scope_lists = scope_lists.flatmap(lambda xs: st.permutations(xs))


@given(shuffled_scope_lists)
def test_idempotent(scopes):
    once = esia_scopes(scopes)
    assert esia_scopes(once) == once


@given(shuffled_scope_lists)
def test_openid_first_exactly_once(scopes):
    result = esia_scopes(scopes)
    assert result[0] == "openid"
    assert result.count("openid") == 1


@given(shuffled_scope_lists)
def test_no_duplicates_and_nothing_lost(scopes):
    result = esia_scopes(scopes)
    assert len(result) == len(set(result))
    assert set(result) == set(scopes)


@given(shuffled_scope_lists)
def test_order_of_first_occurrences_kept(scopes):
    first_seen: list[str] = []
    for scope in scopes:
        if scope != "openid" and scope not in first_seen:
            first_seen.append(scope)
    assert esia_scopes(scopes)[1:] == first_seen


@given(shuffled_scope_lists, st.sampled_from(["fulname", "snlis", "open_id", "kid_snlis"]))
def test_one_unknown_name_always_fails_and_is_named(scopes, unknown):
    with pytest.raises(AnsibleFilterError) as caught:
        esia_scopes([*scopes, unknown])
    assert repr(unknown) in str(caught.value)
