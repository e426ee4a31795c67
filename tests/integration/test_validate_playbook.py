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


def test_lab_inventory_passes():
    run = ansible_playbook("playbooks/validate.yml", REPO / "inventories" / "lab")
    assert run.rc == 0, run.output
    assert run.recap["lab-portal"]["failed"] == 0


def problem_lines(output: str) -> set[str]:
    return {line.strip() for line in output.splitlines() if line.strip().startswith("- portal_domain_")}


def test_a_role_alone_gives_validate_yml_message():
    bad = {
        "portal_domain_name": "miac77.ru",
        "portal_domain_ttl": 0,
        "portal_domain_resolvers": ["192.0.2.53:53; rm"],
        "portal_domain_tsig_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=",
    }
    validate = ansible_playbook("playbooks/validate.yml", REGION77, extra_vars=bad)
    role = ansible_playbook("playbooks/domain.yml", REGION77, extra_vars=bad)
    assert validate.rc != 0 and role.rc != 0
    expected = problem_lines(validate.output)
    assert {line.split(":")[0] for line in expected} == {
        "- portal_domain_name",
        "- portal_domain_ttl",
        "- portal_domain_resolvers[0]",
    }
    assert problem_lines(role.output) == expected
    assert "problem(s) in the settings of role portal_domain" in role.output


def test_no_portal_group_is_refused(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    portal77:\n      ansible_host: 203.0.113.10\n")
    run = ansible_playbook("playbooks/validate.yml", inventory)
    assert run.rc != 0
    assert "no host in the group `portal`" in run.output
    assert "portal77" in run.output
