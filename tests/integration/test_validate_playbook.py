"""playbooks/validate.yml as an operator runs it: without the region's vault password, no
connection to any host (region77's host is a documentation address that
nothing answers on), every problem in one message."""

from tests.harness import REPO, ansible_playbook

REGION77 = REPO / "inventories" / "region77"


def test_region77_passes_without_vault_or_connection():
    run = ansible_playbook("playbooks/validate.yml", REGION77)
    assert run.rc == 0, run.output
    assert run.recap["portal77"]["unreachable"] == 0


def test_bad_values_are_all_named_and_stop_the_site():
    bad = {
        "portal_region_code": "7",
        "portal_domain_zone": "2dr.ru",
        "cryptopro_provider_type": 75,
        "esia_client_environment": "stage",
        "esia_client_scopes": ["openid", "snlis"],
        "portal_org": {"name": "x", "short_name": "x", "ogrn": "1", "inn": "2", "contact": {}},
    }
    run = ansible_playbook("site.yml", REGION77, extra_vars=bad)
    assert run.rc != 0
    for variable in (*bad, "portal_org.ogrn", "portal_org.inn", "portal_org.contact.email"):
        if variable != "portal_org":
            assert f"- {variable}:" in run.output, variable
    assert "did you mean 'snils'" in run.output
    # Nothing after validation ran: no fact gathering, no connection.
    assert "Gathering Facts" not in run.output
    assert run.recap["portal77"]["unreachable"] == 0
