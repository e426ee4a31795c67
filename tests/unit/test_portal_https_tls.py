"""library/portal_https_tls.py, portal_https_certificates.py and module_utils/esia_onboard/tls_host.py
on a temporary directory: keys and requests made once, check mode that writes nothing, pairs switched
in one rename with the previous one kept, the lab CA signing and keeping certificates."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from cryptography import x509

REPO = Path(__file__).resolve().parents[2]

import ansible.module_utils  # noqa: E402

if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))
from ansible.module_utils.esia_onboard import tls_host  # noqa: E402


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tls_module = _load("portal_https_tls")
certificates_module = _load("portal_https_certificates")


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, **params):
        defaults = {
            "private_keys": {},
            "key_size": 2048,
            "key_curve": "secp256r1",
            "subject": {"countryName": "RU", "organizationName": "МИАЦ"},
            "selfsigned_days": 90,
            "renew_days": 30,
            "trust_store": "",
            "fact_file": "/nonexistent/portal_https.fact",
        }
        self.params = {**defaults, **params}
        self.check_mode = check_mode

    def fail_json(self, **kwargs):
        raise Failed(kwargs["msg"])


SITES = [
    {
        "id": "main",
        "file": "zapis.miac99.test",
        "names": ["zapis.miac99.test"],
        "source": "ownca",
        "key_type": "ecdsa",
        "key_given": False,
    },
    {
        "id": "fallback",
        "file": "99.2dr.ru",
        "names": ["99.2dr.ru"],
        "source": "selfsigned",
        "key_type": "ecdsa",
        "key_given": False,
    },
]


def _prepare(tmp_path, check=False):
    return tls_module._prepare(FakeModule(check, state="prepared", tls_dir=str(tmp_path), sites=SITES))


def test_keys_and_requests_are_made_once(tmp_path):
    first = _prepare(tmp_path)
    assert first["changed"]
    main = first["sites"]["main"]
    csr = x509.load_pem_x509_csr(main["csr_pem"].encode())
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["zapis.miac99.test"]
    assert (tmp_path / "private" / "zapis.miac99.test.key").stat().st_mode & 0o777 == 0o600
    assert first["sites"]["fallback"]["selfsigned_pem"].startswith("-----BEGIN CERTIFICATE-----")
    second = _prepare(tmp_path)
    assert not second["changed"]
    assert second["sites"]["main"]["csr_pem"] == main["csr_pem"]
    assert second["sites"]["fallback"]["selfsigned_pem"] == first["sites"]["fallback"]["selfsigned_pem"]


def test_check_mode_on_a_fresh_host_makes_nothing(tmp_path):
    result = _prepare(tmp_path / "tls", check=True)
    assert result["changed"]
    assert result["sites"]["main"]["key_ready"] is False
    assert result["sites"]["main"]["csr_pem"] == ""
    assert not (tmp_path / "tls").exists()


def test_a_changed_name_remakes_the_request_and_keeps_the_key(tmp_path):
    _prepare(tmp_path)
    key_before = (tmp_path / "private" / "zapis.miac99.test.key").read_text()
    sites = [{**SITES[0], "names": ["zapis.miac99.test", "www.zapis.miac99.test"]}]
    result = tls_module._prepare(FakeModule(state="prepared", tls_dir=str(tmp_path), sites=sites))
    assert result["changed"] and result["sites"]["main"]["csr_made"]
    assert (tmp_path / "private" / "zapis.miac99.test.key").read_text() == key_before


def _signed(tmp_path):
    prepared = _prepare(tmp_path)
    made, cert_path, key_path = certificates_module.ensure_lab_ca(str(tmp_path / "ca"))
    assert made
    issuing = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    from cryptography.hazmat.primitives import serialization

    issuing_key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
    csr = x509.load_pem_x509_csr(prepared["sites"]["main"]["csr_pem"].encode())
    return csr, issuing, issuing_key


def test_the_lab_ca_signs_and_keeps_a_certificate_until_it_is_due(tmp_path):
    csr, issuing, issuing_key = _signed(tmp_path)
    assert not certificates_module.ensure_lab_ca(str(tmp_path / "ca"))[0], "the lab CA is made once"
    leaf = certificates_module.ownca_sign(csr, issuing, issuing_key, 90)
    assert certificates_module.ownca_keeps(leaf, csr, issuing, 30)
    assert not certificates_module.ownca_keeps(leaf, csr, issuing, 95), "due for renewal"
    assert not certificates_module.ownca_keeps("", csr, issuing, 30)


def _install(tmp_path, leaf, check=False):
    sites = [{"id": "main", "file": "zapis.miac99.test", "leaf_pem": leaf, "chain_pem": "", "key_given": False}]
    return tls_module._install(FakeModule(check, state="installed", tls_dir=str(tmp_path), sites=sites))


def test_pairs_are_switched_in_one_rename_and_the_previous_one_is_kept(tmp_path):
    csr, issuing, issuing_key = _signed(tmp_path)
    leaves = [certificates_module.ownca_sign(csr, issuing, issuing_key, 90) for _ in range(3)]
    live = tmp_path / "live" / "zapis.miac99.test"

    assert _install(tmp_path, leaves[0], check=True)["changed"]
    assert not live.exists(), "check mode switched the pair"
    assert _install(tmp_path, leaves[0])["changed"]
    assert (live / "fullchain.pem").read_text() == leaves[0]
    key = (tmp_path / "private" / "zapis.miac99.test.key").read_text()
    assert (live / "privkey.pem").read_text() == key
    assert os.readlink(tmp_path / "zapis.miac99.test.fullchain.pem") == "live/zapis.miac99.test/fullchain.pem"
    assert not _install(tmp_path, leaves[0])["changed"]

    first_pair = os.readlink(live)
    _install(tmp_path, leaves[1])
    second_pair = os.readlink(live)
    assert second_pair != first_pair and Path(first_pair).is_dir(), "the previous pair is kept"
    _install(tmp_path, leaves[2])
    assert not Path(first_pair).exists(), "pairs older than the previous one are removed"
    assert Path(second_pair).is_dir()
    assert (live / "fullchain.pem").read_text() == leaves[2]


def test_a_missing_host_key_fails_before_anything_is_switched(tmp_path):
    with pytest.raises(Failed, match="the host's key"):
        _install(tmp_path, "-----BEGIN CERTIFICATE-----\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("nameserver 10.0.0.2\nnameserver fd00::53\n# nameserver 1.1.1.1\n", ["10.0.0.2", "[fd00::53]"]), ("", [])],
)
def test_resolvers(text, expected):
    assert tls_host.resolvers(text) == expected


nginx_module = _load("portal_https_nginx")


def _nginx_run(tmp_path, monkeypatch, script: str, content: str, check=False):
    params = {
        "path": str(tmp_path / "conf.d" / "esia-portal.conf"),
        "content": content,
        "test_script": script,
        "test_script_path": str(tmp_path / "portal-https-nginx-test"),
        "placeholder": "<p>placeholder</p>",
        "webroot": str(tmp_path / "www"),
        "default_site": str(tmp_path / "sites-enabled" / "default"),
        "remove_default_site": True,
        "http_port": 80,
        "fact": {"canonical_name": "zapis.miac99.test"},
        "fact_file": str(tmp_path / "facts.d" / "portal_https.fact"),
    }
    results = {}

    class Exit(Exception):
        pass

    class Module(FakeModule):
        def __init__(self, *args, **kwargs):
            self.params, self.check_mode = params, check

        def exit_json(self, **kwargs):
            results.update(kwargs)
            raise Exit

        def warn(self, text):
            results.setdefault("warnings", []).append(text)

    monkeypatch.setattr(nginx_module, "AnsibleModule", Module)
    (tmp_path / "conf.d").mkdir(exist_ok=True)
    with pytest.raises(Exit):
        nginx_module.main()
    return results


ACCEPT = "#!/bin/sh\nexit 0\n"
REFUSE = '#!/bin/sh\necho "nginx: [emerg] unknown directive \\"no_such_directive\\"" >&2\nexit 1\n'


def test_the_site_is_written_after_the_test_passes_and_then_left_alone(tmp_path, monkeypatch):
    first = _nginx_run(tmp_path, monkeypatch, ACCEPT, "server_name zapis.miac99.test;\n")
    assert first["changed"] and first["site_changed"]
    assert (tmp_path / "conf.d" / "esia-portal.conf").read_text() == "server_name zapis.miac99.test;\n"
    assert (tmp_path / "www" / "index.html").read_text() == "<p>placeholder</p>\n"
    assert '"canonical_name": "zapis.miac99.test"' in (tmp_path / "facts.d" / "portal_https.fact").read_text()
    assert not _nginx_run(tmp_path, monkeypatch, ACCEPT, "server_name zapis.miac99.test;\n")["changed"]


def test_a_refused_site_is_not_installed_and_the_old_one_stays(tmp_path, monkeypatch):
    _nginx_run(tmp_path, monkeypatch, ACCEPT, "old;\n")
    with pytest.raises(Failed) as refused:
        _nginx_run(tmp_path, monkeypatch, REFUSE, "no_such_directive on;\n")
    assert "nginx refused the new configuration" in str(refused.value)
    assert 'unknown directive "no_such_directive"' in str(refused.value)
    assert (tmp_path / "conf.d" / "esia-portal.conf").read_text() == "old;\n"
    assert sorted(p.name for p in (tmp_path / "conf.d").iterdir()) == ["esia-portal.conf"]


def test_check_mode_shows_the_site_in_the_diff_and_writes_nothing(tmp_path, monkeypatch):
    result = _nginx_run(tmp_path, monkeypatch, REFUSE, "server_name zapis.miac99.test;\n", check=True)
    assert result["changed"]
    assert any(d["after"] == "server_name zapis.miac99.test;\n" for d in result["diff"])
    assert not (tmp_path / "conf.d" / "esia-portal.conf").exists()


def test_a_default_site_dpkg_does_not_list_as_shipped_is_kept_and_reported(tmp_path, monkeypatch):
    (tmp_path / "sites-enabled").mkdir()
    (tmp_path / "sites-enabled" / "default").write_text("server { listen 80; }\n")
    result = _nginx_run(tmp_path, monkeypatch, ACCEPT, "x;\n")
    assert not result["default_site_removed"]
    assert (tmp_path / "sites-enabled" / "default").exists()
    assert "is not the file the nginx package shipped" in result["warnings"][0]
