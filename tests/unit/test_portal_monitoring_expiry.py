"""The host's expiry export (roles/portal_monitoring/files/esia_onboard_expiry.py) and the role's rules.

Certificates are made by the real openssl CLI (GOST ones with the GOST
engine); expected dates are what `openssl x509 -enddate` prints, the
Prometheus text is judged by `promtool check metrics`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import ansible.module_utils
import pytest

# module_utils/esia_onboard imports its siblings as ansible.module_utils.esia_onboard.*
_MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from module_utils.esia_onboard import monitoring  # noqa: E402
from tests.certs import gost_workdir, make_cert, openssl_x509_field  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "roles" / "portal_monitoring" / "files" / "esia_onboard_expiry.py"
_spec = importlib.util.spec_from_file_location("esia_onboard_expiry", SCRIPT)
expiry = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(expiry)

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def openssl_end(cert) -> dt.datetime:
    """notAfter as openssl prints it (`notAfter=Dec  1 12:00:00 2027 GMT`)."""
    text = openssl_x509_field(cert, "-enddate").split("=", 1)[1].strip()
    return dt.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    gost_dir = gost_workdir(tmp_path_factory, "expiry-gost")
    plain = tmp_path_factory.mktemp("expiry-tls")
    ca = make_cert(plain, "rsa", ca=True, name="ca", subject="/CN=Test CA")
    leaf = make_cert(
        plain, "ec", issuer=ca, name="leaf", subject="/CN=zapis.miac99.test", san=["zapis.miac99.test"], days=20
    )
    fullchain = plain / "fullchain.pem"
    fullchain.write_text(leaf.pem + ca.pem)
    gost = make_cert(gost_dir, "gost2012_256", subject="/C=RU/O=MIAC/CN=esia_99", days=400)
    return {"ca": ca, "leaf": leaf, "fullchain": fullchain, "gost": gost}


def config(tmp_path: Path, certificates: list[dict], licences: list[dict] | None = None, **extra) -> dict:
    return {
        "state_file": str(tmp_path / "expiry.json"),
        "textfile": str(tmp_path / "esia_onboard.prom"),
        "warn_days": 30,
        "critical_days": 7,
        "certificates": certificates,
        "licences": licences or [],
        **extra,
    }


def test_gost_der_is_read_without_the_engine_and_matches_openssl(certs):
    now = dt.datetime.now(dt.UTC)
    entry = expiry.read_certificate(
        {"kind": "gost", "name": "esia_99", "path": str(certs["gost"].der_path)}, now, 30, 7
    )
    expected = openssl_end(certs["gost"])
    assert entry["not_after_timestamp"] == int(expected.timestamp())
    assert entry["days_left"] == (expected - now).days
    assert entry["level"] == "ok" and "esia_99" in entry["subject"]


def test_fullchain_is_judged_by_its_leaf(certs):
    now = dt.datetime.now(dt.UTC)
    entry = expiry.read_certificate({"kind": "tls", "name": "zapis", "path": str(certs["fullchain"])}, now, 30, 7)
    assert entry["not_after_timestamp"] == int(openssl_end(certs["leaf"]).timestamp())
    assert entry["not_after_timestamp"] != int(openssl_end(certs["ca"]).timestamp())
    assert entry["level"] == "warning"  # 20 days: under 30, over 7


@pytest.mark.parametrize(
    ("days", "expected"),
    [(None, "error"), (-1, "expired"), (0, "critical"), (6, "critical"), (7, "warning"), (29, "warning"), (30, "ok")],
)
def test_levels_at_the_thresholds(days, expected):
    assert expiry.level(days, 30, 7) == expected


def test_days_left_rounds_down_and_goes_negative():
    assert expiry.days_left(NOW + dt.timedelta(days=3, hours=23), NOW) == 3
    assert expiry.days_left(NOW - dt.timedelta(hours=1), NOW) == -1


def test_missing_and_broken_files_are_errors(tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    missing = expiry.read_certificate({"kind": "tls", "name": "a", "path": str(tmp_path / "none.pem")}, NOW, 30, 7)
    broken = expiry.read_certificate({"kind": "tls", "name": "b", "path": str(garbage)}, NOW, 30, 7)
    assert missing["level"] == "error" and "cannot read" in missing["error"]
    assert broken["level"] == "error" and "not a certificate" in broken["error"]


@pytest.mark.parametrize(
    ("fact", "level", "days"),
    [
        ({"license_type": "Demo", "license_expires": "2026-12-05"}, "critical", 3),
        ({"license_type": "Server", "license_expires": None}, "permanent", None),
        ({"license_type": "Server", "license_expires": ""}, "permanent", None),
        ({"license_type": None, "license_expires": None}, "error", None),
        ({"license_type": "Demo", "license_expires": "soon"}, "error", None),
        ({"backend": "cryptopro"}, "error", None),
    ],
)
def test_licence_from_the_cryptopro_fact(tmp_path, fact, level, days):
    path = tmp_path / "esia_cryptopro.fact"
    path.write_text(json.dumps(fact))
    entry = expiry.read_licence({"kind": "cryptopro", "name": "csp", "fact": str(path)}, NOW, 30, 7)
    assert entry["level"] == level
    assert entry.get("days_left") == days


def promtool_check(text: str) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (Makefile APT_PACKAGES)"
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)


def test_prometheus_text_passes_promtool_and_escapes_labels(tmp_path, certs):
    odd = tmp_path / 'we"ird\\dir'
    odd.mkdir()
    shutil.copy(certs["fullchain"], odd / "cert.pem")
    licence = tmp_path / "esia_cryptopro.fact"
    licence.write_text(json.dumps({"license_type": "temporary", "license_expires": "2027-03-01"}))
    state = expiry.collect(
        config(
            tmp_path,
            [
                {"kind": "tls", "name": "zapis.miac99.test", "path": str(certs["fullchain"])},
                {"kind": "tls", "name": "odd", "path": str(odd / "cert.pem")},
                {"kind": "gost", "name": "esia_99", "path": str(tmp_path / "missing.der")},
            ],
            [{"kind": "cryptopro", "name": "csp", "fact": str(licence)}],
        ),
        NOW,
    )
    text = expiry.prometheus_text(state)
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""  # no lint complaint either
    assert 'path="' + str(tmp_path) + '/we\\"ird\\\\dir/cert.pem"' in text
    leaf_end = int(openssl_end(certs["leaf"]).timestamp())
    assert (
        f'esia_onboard_certificate_expiry_timestamp_seconds{{kind="tls",name="zapis.miac99.test",'
        f'path="{certs["fullchain"]}"}} {leaf_end}'
    ) in text.splitlines()
    assert (
        f'esia_onboard_certificate_read_success{{kind="gost",name="esia_99",path="{tmp_path}/missing.der"}} 0' in text
    )
    march = int(dt.datetime(2027, 3, 1, tzinfo=dt.UTC).timestamp())
    assert f'esia_onboard_licence_expiry_timestamp_seconds{{kind="cryptopro",name="csp"}} {march}' in text
    assert f"esia_onboard_expiry_last_run_timestamp_seconds {int(NOW.timestamp())}" in text


def test_promtool_rejects_what_the_check_relies_on():
    # The promtool check above can fail: a sample without its TYPE's HELP lint, and a broken line.
    assert promtool_check("esia_onboard_x{a=b} 1\n").returncode != 0


def run_main(*argv: str, now: dt.datetime = NOW, capsys) -> tuple[int, str]:
    rc = expiry.main(list(argv), now=now)
    return rc, capsys.readouterr().out.strip()


def test_zabbix_discovery_and_items(tmp_path, certs, capsys):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(config(tmp_path, [{"kind": "gost", "name": "esia_99", "path": str(certs["gost"].der_path)}]))
    )
    rc, out = run_main("--config", str(path), "refresh", capsys=capsys)
    assert rc == 0 and json.loads(out)["changed"] is True
    rc, out = run_main("--config", str(path), "zabbix", "discovery", capsys=capsys)
    assert rc == 0
    assert json.loads(out) == {
        "data": [
            {"{#TYPE}": "certificate", "{#KIND}": "gost", "{#NAME}": "esia_99", "{#PATH}": str(certs["gost"].der_path)}
        ]
    }
    end = openssl_end(certs["gost"])
    later = NOW + dt.timedelta(days=10)
    rc, out = run_main("--config", str(path), "zabbix", "days_left", "gost", "esia_99", now=later, capsys=capsys)
    assert rc == 0 and int(out) == (end - later).days  # counted from now, not from the last refresh
    rc, out = run_main("--config", str(path), "zabbix", "not_after", "gost", "esia_99", capsys=capsys)
    assert int(out) == int(end.timestamp())
    rc, out = run_main("--config", str(path), "zabbix", "status", "gost", "esia_99", now=end, capsys=capsys)
    assert out == "critical"
    rc, out = run_main("--config", str(path), "zabbix", "last_run", capsys=capsys)
    assert int(out) == int(NOW.timestamp())
    rc, out = run_main("--config", str(path), "zabbix", "days_left", "tls", "nothing", capsys=capsys)
    assert rc == 1 and "no entry tls,nothing" in out


def test_refresh_reports_a_change_only_when_the_certificates_change(tmp_path, certs, capsys):
    target = tmp_path / "cert.pem"
    shutil.copy(certs["fullchain"], target)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(tmp_path, [{"kind": "tls", "name": "zapis", "path": str(target)}])))
    assert json.loads(run_main("--config", str(path), "refresh", capsys=capsys)[1])["changed"] is True
    later = NOW + dt.timedelta(days=1)
    assert json.loads(run_main("--config", str(path), "refresh", now=later, capsys=capsys)[1])["changed"] is False
    state = json.loads((tmp_path / "expiry.json").read_text())
    assert state["last_run"] == int(later.timestamp())
    shutil.copy(certs["gost"].pem_path, target)
    before = (tmp_path / "expiry.json").read_text()
    dry = json.loads(run_main("--config", str(path), "refresh", "--dry-run", capsys=capsys)[1])
    assert dry["changed"] is True and (tmp_path / "expiry.json").read_text() == before  # nothing written
    assert json.loads(run_main("--config", str(path), "refresh", capsys=capsys)[1])["changed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "config.json", "esia_onboard.prom", "expiry.json"]


def test_a_bad_config_is_named(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"state_file": "/x", "certificates": [{"kind": "tls"}]}))
    assert expiry.main(["--config", str(path), "refresh"], now=NOW) == 1
    assert "certificates must be a list of objects with kind, name, path" in capsys.readouterr().err


# -- the role's Python: what is watched, and the settings' rules ---------------------


def test_expiry_config_from_the_local_facts():
    facts = {
        "portal_https": {
            "certificates": {
                "fallback": {"certificate": "/etc/ssl/esia-portal/99.2dr.ru.fullchain.pem", "names": ["99.2dr.ru"]},
                "main": {"certificate": "/etc/ssl/esia-portal/zapis.fullchain.pem", "names": ["zapis.miac99.test"]},
            }
        },
        "esia_cryptopro": {"backend": "cryptopro", "container": "esia_99", "certificate_der": "/var/lib/x/esia_99.cer"},
        "esia_client": {
            "esia_certificates": ["/etc/esia/esia-gost 2025.cer", {"path": "/etc/esia/b.pem", "name": "new"}]
        },
    }
    extra = [{"kind": "tls", "name": "api", "path": "/etc/ssl/api.pem"}]
    assert monitoring.expiry_config(facts, extra) == {
        "certificates": [
            {"kind": "tls", "name": "zapis.miac99.test", "path": "/etc/ssl/esia-portal/zapis.fullchain.pem"},
            {"kind": "tls", "name": "99.2dr.ru", "path": "/etc/ssl/esia-portal/99.2dr.ru.fullchain.pem"},
            {"kind": "gost", "name": "esia_99", "path": "/var/lib/x/esia_99.cer"},
            {"kind": "esia", "name": "esia-gost_2025", "path": "/etc/esia/esia-gost 2025.cer"},
            {"kind": "esia", "name": "new", "path": "/etc/esia/b.pem"},
            {"kind": "tls", "name": "api", "path": "/etc/ssl/api.pem"},
        ],
        "licences": [{"kind": "cryptopro", "name": "csp", "fact": "/etc/ansible/facts.d/esia_cryptopro.fact"}],
    }


def test_expiry_config_of_a_host_with_no_facts_and_no_licence():
    assert monitoring.expiry_config({}) == {"certificates": [], "licences": []}
    gost_only = {
        "esia_cryptopro": {
            "backend": "openssl_gost",
            "container": "c",
            "certificate_der": "/c.cer",
            "license_type": None,
            "license_expires": None,
        }
    }
    assert monitoring.expiry_config(gost_only)["licences"] == []


def test_rules_name_the_setting_and_the_fix():
    assert monitoring.thresholds_problems({"portal_status_warn_days": 30, "portal_status_critical_days": 7}) == []
    (problem,) = monitoring.thresholds_problems({"portal_status_warn_days": 7, "portal_status_critical_days": 30})
    assert problem.startswith("portal_status_critical_days: got 30;") and "below portal_status_warn_days" in problem
    assert monitoring.days_problems("portal_status_warn_days", True)
    assert monitoring.days_problems("portal_status_warn_days", 0)
    assert monitoring.absolute_path_problems("portal_monitoring_state_file", "var/lib/x.json")
    assert monitoring.on_calendar_problems("daily\nOnBootSec=0")
    assert monitoring.service_problems("zabbix agent")
    assert monitoring.service_problems("zabbix-agent2") == []
    problems = monitoring.extra_certificates_problems(
        [
            {"kind": "tls", "name": "a,b", "path": "/x"},
            {"kind": "tls", "name": "ok", "path": "relative"},
            {"kind": "tls", "name": "ok", "path": "/y"},
            {"kind": "tls"},
        ]
    )
    assert [p.split(":")[0] for p in problems] == [
        "portal_monitoring_extra_certificates[0].name",
        "portal_monitoring_extra_certificates[1].path",
        "portal_monitoring_extra_certificates[2]",
        "portal_monitoring_extra_certificates[3]",
    ]
    assert monitoring.extra_certificates_problems("x")


# -- the Prometheus alert rules shipped for the MIAC's server (runbook 08, section E) --------

RULES = REPO / "roles" / "portal_monitoring" / "files" / "prometheus-rules.yml"


def test_alert_rules_fire_on_the_exported_series(tmp_path):
    """promtool test rules: 20 days left warns, 4 days is critical too, 1000 days is quiet."""

    def alert(kind: str, name: str, severity: str, left: str, urgency: str) -> dict:
        return {
            "exp_labels": {"severity": severity, "kind": kind, "name": name, "path": f"/{name}", "instance": "h"},
            "exp_annotations": {
                "summary": f"{kind} {name} on h expires in {left}",
                "description": f"/{name}: renew it{urgency} (runbook 08).",
            },
        }

    series = "esia_onboard_certificate_expiry_timestamp_seconds"
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{series}{{kind="tls",name="a",path="/a",instance="h"}}', "values": "1728000x180"},
                    {"series": f'{series}{{kind="gost",name="b",path="/b",instance="h"}}', "values": "86400000x180"},
                    {"series": f'{series}{{kind="esia",name="c",path="/c",instance="h"}}', "values": "432000x180"},
                    {"series": 'esia_onboard_expiry_last_run_timestamp_seconds{instance="h"}', "values": "0x180"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "2h",
                        "alertname": "EsiaOnboardCertificateExpiresSoon",
                        "exp_alerts": [
                            alert("tls", "a", "warning", "19d 22h 0m 0s", ""),
                            alert("esia", "c", "warning", "4d 22h 0m 0s", ""),
                        ],
                    },
                    {
                        "eval_time": "2h",
                        "alertname": "EsiaOnboardCertificateExpiresVerySoon",
                        "exp_alerts": [alert("esia", "c", "critical", "4d 22h 0m 0s", " now")],
                    },
                    {"eval_time": "2h", "alertname": "EsiaOnboardExpiryExportStale", "exp_alerts": []},
                ],
            }
        ],
    }
    test_file = tmp_path / "rules-test.yml"
    test_file.write_text(json.dumps(tests))  # JSON is YAML
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (Makefile APT_PACKAGES)"
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_registry_checks_the_role_settings():
    """What validate.yml and the role's entry check (portal_role_check) apply: the rules registered in settings.py."""
    from module_utils.esia_onboard import settings

    specs = settings.load_specs(REPO / "roles")
    good = settings.with_defaults({}, {k: v for k, v in specs.items() if "portal_monitoring" in v["roles"]})
    ours = [n for n in settings.public_names(specs) if "portal_monitoring" in specs[n]["roles"]]
    assert {n for n in ours if n in settings.RULES} >= {
        "portal_status_warn_days",
        "portal_status_critical_days",
        "portal_monitoring_state_file",
        "portal_monitoring_prometheus_textfile_dir",
        "portal_monitoring_zabbix_include_dir",
        "portal_monitoring_extra_certificates",
        "portal_monitoring_refresh_on_calendar",
        "portal_monitoring_zabbix_agent_service",
    }
    assert [p for n in ours if n in settings.RULES for p in settings.RULES[n](good[n], good)] == []
    (problem,) = settings.RULES["portal_monitoring_zabbix_include_dir"]("zabbix", good)
    assert problem.startswith("portal_monitoring_zabbix_include_dir: got 'zabbix';")
    crossed = {**good, "portal_status_critical_days": 40}
    assert [p for rule in settings.CROSS_RULES for p in rule(crossed) if p.startswith("portal_status_critical_days")]
    spec = importlib.util.spec_from_file_location(
        "portal_monitoring_filters", REPO / "roles" / "portal_monitoring" / "filter_plugins" / "portal_monitoring.py"
    )
    filters_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters_module)
    filters = filters_module.FilterModule().filters()
    assert filters["portal_monitoring_expiry_config"]({}, None) == {"certificates": [], "licences": []}


def test_refresh_removes_what_a_switched_off_export_left_and_reports_it(tmp_path):
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    old_items = tmp_path / "zabbix" / "esia_onboard.conf"
    old_items.parent.mkdir()
    old_items.write_text("UserParameter=...\n")
    config = {"state_file": str(tmp_path / "state" / "expiry.json"), "absent": [str(old_items)]}

    preview = expiry.refresh(config, now, dry_run=True)
    assert preview["changed"] and preview["actions"] == [f"remove {old_items}"] and old_items.exists()
    assert not (tmp_path / "state").exists(), "a dry run writes nothing"

    done = expiry.refresh(config, now)
    assert done["changed"] and not old_items.exists()
    assert json.loads((tmp_path / "state" / "expiry.json").read_text())["entries"] == []  # directory made
    assert expiry.refresh(config, now) == {**done, "changed": False, "actions": []}


def test_the_timer_is_enabled_and_started_only_when_it_is_not(monkeypatch):
    calls = []
    state = {"enabled": False}

    def systemctl(*args):
        calls.append(args)
        if args[0] in ("is-enabled", "is-active"):
            return 0 if state["enabled"] else 3
        if args[0] == "enable":
            state["enabled"] = True
        return 0

    monkeypatch.setattr(expiry, "_systemctl", systemctl)
    assert expiry.ensure_timer("x.timer", daemon_reload=True, dry_run=True) == ["enable and start x.timer"]
    assert ("daemon-reload",) not in calls and not state["enabled"], "a dry run changes nothing"
    assert expiry.ensure_timer("x.timer", daemon_reload=True, dry_run=False) == ["enable and start x.timer"]
    assert ("daemon-reload",) in calls and ("enable", "--now", "x.timer") in calls
    assert expiry.ensure_timer("x.timer", daemon_reload=False, dry_run=False) == []
