# ruff: noqa: RUF001 (Cyrillic in organisation and IDN names is the point)
"""playbooks/validate.yml against copies of inventories/region77 with one mutation each.

Each case is one host of a generated inventory: the host carries region77's
whole configuration as host variables, with one setting changed (or left out,
so its role default applies). One ansible-playbook run checks a whole group of
cases at once (validate.yml connects to nothing), and every case is then its
own test: a bad case's host must fail with a message line naming the setting,
a valid case's host must pass; each group's exit status is asserted too.
Controller only: nothing here starts a container or touches the lab.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import BIN, REPO, environment

REGION77 = REPO / "inventories" / "region77"
DELETE = object()  # "leave the setting out": its role default applies
VAULT_PASSWORD = "mutation-suite-vault-password"
TSIG_OK = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="  # 32 bytes, hmac-sha256
PIN_OK = "pin-12345678"


def region77_settings() -> dict[str, Any]:
    """region77's group variables (raw, templates kept) and its host's variables."""
    merged: dict[str, Any] = {}
    for path in sorted((REGION77 / "group_vars" / "all").glob("*.yml")):
        merged.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    hosts = yaml.safe_load((REGION77 / "hosts.yml").read_text(encoding="utf-8"))
    (host_vars,) = hosts["all"]["children"]["portal"]["hosts"].values()
    merged.update(host_vars)
    return merged


def mutate(settings: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy with ``path`` (dotted for a mapping's key: portal_org.ogrn) set to ``value`` or deleted."""
    changed = copy.deepcopy(settings)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    if value is DELETE:
        target.pop(last, None)
    else:
        target[last] = value
    return changed


ORG_SHORT_65 = "О" * 65
# (case id, {path: value}, the setting the message must name)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("region-int", {"portal_region_code": 77}, "portal_region_code"),
    ("region-one-digit", {"portal_region_code": "7"}, "portal_region_code"),
    ("region-newline", {"portal_region_code": "77\n"}, "portal_region_code"),
    ("region-null", {"portal_region_code": None}, "portal_region_code"),
    ("ogrn-check-digit", {"portal_org.ogrn": "1027700000007"}, "portal_org.ogrn"),
    ("ogrn-int", {"portal_org.ogrn": 1027700000008}, "portal_org.ogrn"),
    ("ogrn-first-digit", {"portal_org.ogrn": "3027700000008"}, "portal_org.ogrn"),
    ("inn-check-digit", {"portal_org.inn": "7700000008"}, "portal_org.inn"),
    ("email-bad", {"portal_org.contact.email": "esia at miac77.ru"}, "portal_org.contact.email"),
    ("email-newline", {"portal_org.contact.email": "esia@miac77.ru\n"}, "portal_org.contact.email"),
    ("phone-letters", {"portal_org.contact.phone": "call me"}, "portal_org.contact.phone"),
    ("org-name-two-lines", {"portal_org.name": "ГБУЗ\nМИАЦ"}, "portal_org.name"),
    ("org-short-name-too-long", {"portal_org.short_name": ORG_SHORT_65}, "portal_org.short_name"),
    ("org-contact-missing", {"portal_org.contact": DELETE}, "portal_org.contact"),
    ("org-string", {"portal_org": "МИАЦ"}, "portal_org"),
    ("user-root", {"portal_service_user": "root"}, "portal_service_user"),
    ("user-www-data", {"portal_service_user": "www-data"}, "portal_service_user"),
    ("user-nobody", {"portal_service_user": "nobody"}, "portal_service_user"),
    ("user-nginx", {"portal_service_user": "nginx"}, "portal_service_user"),
    ("user-spaces", {"portal_service_user": "Esia Portal"}, "portal_service_user"),
    ("user-connecting", {"portal_service_user": "ansible"}, "portal_service_user"),
    ("group-root", {"portal_service_group": "root"}, "portal_service_group"),
    ("group-sudo", {"portal_service_group": "sudo"}, "portal_service_group"),
    ("home-root-dir", {"portal_service_home": "/"}, "portal_service_home"),
    ("home-etc", {"portal_service_home": "/etc"}, "portal_service_home"),
    ("home-usr", {"portal_service_home": "/usr"}, "portal_service_home"),
    ("home-var-lib", {"portal_service_home": "/var/lib"}, "portal_service_home"),
    ("home-home", {"portal_service_home": "/home"}, "portal_service_home"),
    ("home-root", {"portal_service_home": "/root"}, "portal_service_home"),
    ("home-relative", {"portal_service_home": "var/lib/esia-portal"}, "portal_service_home"),
    ("home-dotdot", {"portal_service_home": "/var/lib/esia-portal/../../etc"}, "portal_service_home"),
    ("home-space", {"portal_service_home": "/var/lib/esia portal"}, "portal_service_home"),
    ("home-person", {"portal_service_home": "/home/ivan"}, "portal_service_home"),
    ("home-tmp", {"portal_service_home": "/tmp/esia-portal"}, "portal_service_home"),
    ("name-apex", {"portal_domain_name": "miac77.ru"}, "portal_domain_name"),
    ("name-outside-zone", {"portal_domain_name": "zapis.example.org"}, "portal_domain_name"),
    ("name-under-2dr", {"portal_domain_name": "zapis.77.2dr.ru"}, "portal_domain_name"),
    ("name-is-fallback", {"portal_domain_name": "77.2dr.ru"}, "portal_domain_name"),
    ("name-space", {"portal_domain_name": "zapis .miac77.ru"}, "portal_domain_name"),
    ("name-newline", {"portal_domain_name": "zapis.miac77.ru\n"}, "portal_domain_name"),
    ("name-wildcard", {"portal_domain_name": "*.miac77.ru"}, "portal_domain_name"),
    ("name-underscore", {"portal_domain_name": "za_pis.miac77.ru"}, "portal_domain_name"),
    ("name-long-label", {"portal_domain_name": "z" * 64 + ".miac77.ru"}, "portal_domain_name"),
    ("zone-2dr", {"portal_domain_zone": "2dr.ru", "portal_domain_name": "zapis.2dr.ru"}, "portal_domain_zone"),
    (
        "zone-not-national",
        {"portal_domain_zone": "miac77.org", "portal_domain_name": "zapis.miac77.org"},
        "portal_domain_zone",
    ),
    ("zone-empty-label", {"portal_domain_zone": "miac77..ru"}, "portal_domain_zone"),
    ("fallback-other-region", {"portal_domain_fallback": "78.2dr.ru"}, "portal_domain_fallback"),
    ("fallback-miac-name", {"portal_domain_fallback": "zapis.miac77.ru"}, "portal_domain_fallback"),
    ("alias-apex", {"portal_domain_aliases": ["miac77.ru"]}, "portal_domain_aliases"),
    ("alias-outside", {"portal_domain_aliases": ["www.other.ru"]}, "portal_domain_aliases"),
    ("alias-space", {"portal_domain_aliases": ["www zapis.miac77.ru"]}, "portal_domain_aliases"),
    ("alias-string", {"portal_domain_aliases": "www.zapis.miac77.ru"}, "portal_domain_aliases"),
    ("alias-is-name", {"portal_domain_aliases": ["zapis.miac77.ru"]}, "portal_domain_aliases"),
    ("alias-twice", {"portal_domain_aliases": ["a.miac77.ru", "A.miac77.ru"]}, "portal_domain_aliases"),
    ("address-unspecified", {"portal_domain_address": "0.0.0.0"}, "portal_domain_address"),
    ("address-broadcast", {"portal_domain_address": "255.255.255.255"}, "portal_domain_address"),
    ("address-multicast", {"portal_domain_address": "224.0.0.1"}, "portal_domain_address"),
    ("address-short", {"portal_domain_address": "203.0.113"}, "portal_domain_address"),
    ("address-ipv6", {"portal_domain_address": "2001:db8::10"}, "portal_domain_address"),
    ("address-leading-space", {"portal_domain_address": " 203.0.113.10"}, "portal_domain_address"),
    ("address6-ipv4", {"portal_domain_address6": "203.0.113.10"}, "portal_domain_address6"),
    ("address6-multicast", {"portal_domain_address6": "ff02::1"}, "portal_domain_address6"),
    ("address6-unspecified", {"portal_domain_address6": "::"}, "portal_domain_address6"),
    ("dns-server-name", {"portal_domain_dns_server": "ns1.miac77.ru"}, "portal_domain_dns_server"),
    ("dns-server-unspecified", {"portal_domain_dns_server": "0.0.0.0"}, "portal_domain_dns_server"),
    ("dns-port-zero", {"portal_domain_dns_port": 0}, "portal_domain_dns_port"),
    ("dns-port-too-big", {"portal_domain_dns_port": 65536}, "portal_domain_dns_port"),
    ("dns-port-letters", {"portal_domain_dns_port": "53a"}, "portal_domain_dns_port"),
    ("dns-port-string-false", {"portal_domain_dns_port": "false"}, "portal_domain_dns_port"),
    ("dns-port-bool", {"portal_domain_dns_port": True}, "portal_domain_dns_port"),
    ("dns-port-fullwidth", {"portal_domain_dns_port": "\uff15\uff13"}, "portal_domain_dns_port"),
    ("tsig-name-space", {"portal_domain_tsig_name": "miac77 update"}, "portal_domain_tsig_name"),
    ("tsig-md5", {"portal_domain_tsig_algorithm": "hmac-md5"}, "portal_domain_tsig_algorithm"),
    ("tsig-unknown", {"portal_domain_tsig_algorithm": "hmac-sha999"}, "portal_domain_tsig_algorithm"),
    ("resolvers-string", {"portal_domain_resolvers": "192.0.2.53:53"}, "portal_domain_resolvers"),
    ("resolvers-name", {"portal_domain_resolvers": ["dns.example:53"]}, "portal_domain_resolvers"),
    ("resolvers-port-zero", {"portal_domain_resolvers": ["192.0.2.53:0"]}, "portal_domain_resolvers"),
    ("resolvers-v4-brackets", {"portal_domain_resolvers": ["[192.0.2.53]:53"]}, "portal_domain_resolvers"),
    ("resolvers-unspecified", {"portal_domain_resolvers": ["0.0.0.0:53"]}, "portal_domain_resolvers"),
    ("resolvers-half-bracket", {"portal_domain_resolvers": ["2001:db8::53]:53"]}, "portal_domain_resolvers"),
    ("ttl-zero", {"portal_domain_ttl": 0}, "portal_domain_ttl"),
    ("ttl-negative", {"portal_domain_ttl": -1}, "portal_domain_ttl"),
    ("ttl-unit", {"portal_domain_ttl": "300s"}, "portal_domain_ttl"),
    ("ttl-too-big", {"portal_domain_ttl": 2**31}, "portal_domain_ttl"),
    ("national-tld-string", {"portal_domain_require_national_tld": "false"}, "portal_domain_require_national_tld"),
    ("upstream-injection", {"portal_https_upstream": "http://127.0.0.1:8080; } location / {"}, "portal_https_upstream"),
    ("upstream-trailing-space", {"portal_https_upstream": "http://127.0.0.1:8080 "}, "portal_https_upstream"),
    ("upstream-scheme", {"portal_https_upstream": "ftp://127.0.0.1:8080"}, "portal_https_upstream"),
    ("upstream-unspecified", {"portal_https_upstream": "http://0.0.0.0:8080"}, "portal_https_upstream"),
    ("upstream-port", {"portal_https_upstream": "http://127.0.0.1:99999"}, "portal_https_upstream"),
    ("upstream-quote", {"portal_https_upstream": 'http://127.0.0.1:8080/"x'}, "portal_https_upstream"),
    (
        "upstream-none-no-placeholder",
        {"portal_https_upstream": "", "portal_https_placeholder": False},
        "portal_https_upstream",
    ),
    ("extra-name-semicolon", {"portal_https_extra_names": ["www.zapis.miac77.ru;"]}, "portal_https_extra_names"),
    ("extra-name-space", {"portal_https_extra_names": ["www zapis.miac77.ru"]}, "portal_https_extra_names"),
    ("https-resolver-option", {"portal_https_resolvers": ["192.0.2.53 valid=30s"]}, "portal_https_resolvers"),
    ("https-resolver-bare-v6", {"portal_https_resolvers": ["2001:db8::53"]}, "portal_https_resolvers"),
    ("http-port-zero", {"portal_https_http_port": 0}, "portal_https_http_port"),
    ("https-port-letters", {"portal_https_https_port": "443x"}, "portal_https_https_port"),
    ("https-port-equals-http", {"portal_https_https_port": 80}, "portal_https_https_port"),
    ("hsts-zero", {"portal_https_hsts_max_age": 0}, "portal_https_hsts_max_age"),
    ("expiry-days-zero", {"portal_https_expiry_warning_days": 0}, "portal_https_expiry_warning_days"),
    ("lab-days-within-window", {"portal_https_lab_certificate_days": 20}, "portal_https_expiry_warning_days"),
    ("certificate-source", {"portal_https_certificate_source": "letsencrypt"}, "portal_https_certificate_source"),
    ("fallback-mode", {"portal_https_fallback_mode": "proxy"}, "portal_https_fallback_mode"),
    ("key-type", {"portal_https_key_type": "dsa"}, "portal_https_key_type"),
    ("key-size", {"portal_https_key_size": 1024}, "portal_https_key_size"),
    (
        "extra-config-brace",
        {"portal_https_server_extra_config": "add_header X-A 1; }"},
        "portal_https_server_extra_config",
    ),
    ("root-sha256", {"portal_https_russian_trusted_root_sha256": "abc"}, "portal_https_russian_trusted_root_sha256"),
    ("csr-country", {"portal_https_csr_subject": {"countryName": "RUS"}}, "portal_https_csr_subject"),
    ("csr-org-long", {"portal_https_csr_subject": {"organizationName": "O" * 65}}, "portal_https_csr_subject"),
    ("csr-unknown", {"portal_https_csr_subject": {"favouriteColour": "red"}}, "portal_https_csr_subject"),
    ("ssl-protocol-old", {"portal_https_ssl_protocols": ["TLSv1"]}, "portal_https_ssl_protocols"),
    ("backend", {"cryptopro_backend": "vipnet"}, "cryptopro_backend"),
    ("gamma-missing", {"cryptopro_rng_gamma_file": DELETE}, "cryptopro_rng_gamma_file"),
    ("gamma-empty", {"cryptopro_rng_gamma_file": ""}, "cryptopro_rng_gamma_file"),
    ("provider-75", {"cryptopro_provider_type": 75}, "cryptopro_provider_type"),
    ("provider-bool", {"cryptopro_provider_type": True}, "cryptopro_provider_type"),
    ("container-space", {"cryptopro_container": "esia 77"}, "cryptopro_container"),
    ("container-dot", {"cryptopro_container": ".esia"}, "cryptopro_container"),
    ("distribution-sha-short", {"cryptopro_distribution_sha256": "abc"}, "cryptopro_distribution_sha256"),
    ("subject-cn-long", {"cryptopro_subject": [{"type": "CN", "value": "C" * 65}]}, "cryptopro_subject"),
    ("subject-unknown-type", {"cryptopro_subject": [{"type": "XX", "value": "x"}]}, "cryptopro_subject"),
    (
        "subject-ogrn-short",
        {"cryptopro_subject": [{"type": "CN", "value": "x"}, {"type": "OGRN", "value": "1"}]},
        "cryptopro_subject",
    ),
    ("selfsigned-days-zero", {"cryptopro_selfsigned_days": 0}, "cryptopro_selfsigned_days"),
    (
        "renew-window",
        {"cryptopro_selfsigned_days": 30, "cryptopro_selfsigned_renew_days": 30},
        "cryptopro_selfsigned_renew_days",
    ),
    ("gamma-file-two-lines", {"cryptopro_rng_gamma_file": "/a\n/b"}, "cryptopro_rng_gamma_file"),
    ("export-dir-etc", {"cryptopro_export_dir": "/etc"}, "cryptopro_export_dir"),
    ("paramset", {"cryptopro_openssl_paramset": "Z"}, "cryptopro_openssl_paramset"),
    ("install-class", {"cryptopro_install_class": "kc3"}, "cryptopro_install_class"),
    ("certificate-source-cryptopro", {"cryptopro_certificate_source": "bought"}, "cryptopro_certificate_source"),
    ("environment", {"esia_client_environment": "production"}, "esia_client_environment"),
    ("api-version", {"esia_client_api_version": "v3"}, "esia_client_api_version"),
    ("mnemonic-empty", {"esia_client_mnemonic": ""}, "esia_client_mnemonic"),
    ("mnemonic-missing", {"esia_client_mnemonic": DELETE}, "esia_client_mnemonic"),
    ("mnemonic-space", {"esia_client_mnemonic": "MIAC 77"}, "esia_client_mnemonic"),
    ("mnemonic-newline", {"esia_client_mnemonic": "MIAC77PORTAL\n"}, "esia_client_mnemonic"),
    ("scopes-typo", {"esia_client_scopes": ["openid", "fulname"]}, "esia_client_scopes"),
    ("scopes-no-openid", {"esia_client_scopes": ["fullname"]}, "esia_client_scopes"),
    ("scopes-string", {"esia_client_scopes": "openid fullname"}, "esia_client_scopes"),
    ("redirect-relative", {"esia_client_redirect_path": "esia/callback"}, "esia_client_redirect_path"),
    ("redirect-space", {"esia_client_redirect_path": "/esia callback"}, "esia_client_redirect_path"),
    (
        "redirect-extra-http",
        {"esia_client_redirect_uris_extra": ["http://zapis.miac77.ru/cb"]},
        "esia_client_redirect_uris_extra",
    ),
    ("logout-redirect-relative", {"esia_client_logout_redirect_path": "home"}, "esia_client_logout_redirect_path"),
    ("base-url-path", {"esia_client_base_url": "https://esia.gosuslugi.ru/aas"}, "esia_client_base_url"),
    ("application-email", {"esia_client_application_email": "sd at sc.minsvyaz.ru"}, "esia_client_application_email"),
    ("is-name-two-lines", {"esia_client_is_name": "Портал\nзаписи"}, "esia_client_is_name"),
    ("probe-timeout-zero", {"esia_client_probe_timeout": 0}, "esia_client_probe_timeout"),
    ("access-type", {"esia_client_access_type": "always"}, "esia_client_access_type"),
    ("config-dir-etc", {"esia_client_config_dir": "/etc"}, "esia_client_config_dir"),
    ("redirect-on-fallback-string", {"esia_client_redirect_on_fallback": "yes"}, "esia_client_redirect_on_fallback"),
    ("timezone", {"portal_base_timezone": "Europe/Moscow;"}, "portal_base_timezone"),
    ("ntp-server-space", {"portal_base_ntp_servers": ["ntp .example.ru"]}, "portal_base_ntp_servers"),
    ("ntp-pool-unspecified", {"portal_base_ntp_pools": ["0.0.0.0"]}, "portal_base_ntp_pools"),
    ("local-stratum", {"portal_base_ntp_local_stratum": 16}, "portal_base_ntp_local_stratum"),
    ("time-offset-zero", {"portal_base_time_max_offset": 0}, "portal_base_time_max_offset"),
    ("package-name", {"portal_base_extra_packages": ["bad package"]}, "portal_base_extra_packages"),
    ("sync-timeout-unit", {"portal_base_time_sync_timeout": "60s"}, "portal_base_time_sync_timeout"),
]

# Valid inventories: role defaults left out, documented forms.
MINIMAL_KEEP = {
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
    "portal_domain_tsig_secret",
    "cryptopro_pin",
    "cryptopro_rng_gamma_file",  # no default stands in for the vendor's gamma
    "esia_client_mnemonic",
    "ansible_host",
    "ansible_user",
    "ansible_become",
}
LEFT_OUT = [
    "portal_domain_dns_port",
    "portal_domain_tsig_algorithm",
    "portal_domain_resolvers",
    "portal_domain_ttl",
    "portal_domain_aliases",
    "portal_domain_address6",
    "portal_domain_require_national_tld",
    "portal_domain_fallback_resolvers",
    "portal_https_certificate_source",
    "portal_https_fallback_certificate_source",
    "portal_https_fallback_mode",
    "portal_https_upstream",
    "cryptopro_backend",
    "cryptopro_container",
    "cryptopro_provider_type",
    "cryptopro_distribution_sha256",
    "esia_client_environment",
    "esia_client_api_version",
    "esia_client_scopes",
    "esia_client_redirect_path",
    "esia_client_redirect_on_fallback",
]
VALID: list[tuple[str, dict[str, Any]]] = [
    ("region77-as-shipped", {}),
    *((f"default-{name}", {name: DELETE}) for name in LEFT_OUT),
    ("resolvers-ipv6-bracketed", {"portal_domain_resolvers": ["[2001:db8::53]:53"]}),
    ("resolvers-ipv6-bare", {"portal_domain_resolvers": ["2001:db8::53"]}),
    ("resolvers-ipv4-bare-and-port", {"portal_domain_resolvers": ["192.0.2.53", "192.0.2.54:5353"]}),
    ("fallback-resolvers-ipv6", {"portal_domain_fallback_resolvers": ["[2001:db8::53]:53"]}),
    ("address6", {"portal_domain_address6": "2001:db8::10"}),
    ("aliases", {"portal_domain_aliases": ["www.zapis.miac77.ru", "lk.miac77.ru"]}),
    ("port-as-digits", {"portal_domain_dns_port": "5353"}),
    ("provider-81-allowed", {"cryptopro_provider_type": 81, "cryptopro_allow_512bit_signer": True}),
    ("tsig-sha512", {"portal_domain_tsig_algorithm": "hmac-sha512"}),
    (
        "idn-zone",
        {"portal_domain_zone": "миац77.рф", "portal_domain_name": "запись.миац77.рф", "portal_domain_aliases": []},
    ),
    ("upstream-ipv6-https-path", {"portal_https_upstream": "https://[2001:db8::1]:8443/app"}),
    ("upstream-host-name", {"portal_https_upstream": "http://app.miac77.local:8080"}),
    ("https-resolvers", {"portal_https_resolvers": ["[2001:db8::53]:53", "192.0.2.53"]}),
    ("https-extra-names", {"portal_https_extra_names": ["www.zapis.miac77.ru"]}),
    ("own-account", {"portal_service_user": "portal77", "portal_service_group": "portal77"}),
    ("home-srv", {"portal_service_home": "/srv/esia-portal"}),
    ("subject-escaped-chars", {"portal_org.short_name": 'ГБУЗ "МИАЦ", г. Москва'}),
    ("sha256-pinned", {"cryptopro_distribution_sha256": "a" * 64}),
    ("tsig-sha1-warns", {"portal_domain_tsig_algorithm": "hmac-sha1"}),
    ("typo-warns", {"portal_domain_tll": 300}),
    (
        "national-tld-off",
        {
            "portal_domain_require_national_tld": False,
            "portal_domain_zone": "miac77.org",
            "portal_domain_name": "zapis.miac77.org",
        },
    ),
]
VALID.append(("minimal-all-defaults", {key: DELETE for key in region77_settings() if key not in MINIMAL_KEEP}))

# Secrets, read from a real vault (play 2): (case id, vault values or overrides, the setting named).
SECRET_BAD: list[tuple[str, dict[str, Any], str]] = [
    ("tsig-not-base64", {"tsig": "not base64!"}, "portal_domain_tsig_secret"),
    ("tsig-too-short", {"tsig": "c2hvcnQ="}, "portal_domain_tsig_secret"),
    ("tsig-bad-padding", {"tsig": TSIG_OK[:-1]}, "portal_domain_tsig_secret"),
    ("pin-short", {"pin": "12345"}, "cryptopro_pin"),
    ("pin-newline", {"pin": "12345678\n"}, "cryptopro_pin"),
    (
        "private-key-garbage",
        {"key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
        "portal_https_private_key",
    ),
    (
        "private-key-with-ownca",
        {"key": "not a key", "settings": {"portal_https_certificate_source": "ownca"}},
        "portal_https_private_key",
    ),
    ("vault-variable-missing", {"pin": DELETE}, "cryptopro_pin"),
]


def run_validate(inventory: Path, *args: str) -> dict[str, Any]:
    """ansible-playbook playbooks/validate.yml with the json callback: {rc, stderr, hosts: {host: [msgs]}, failed}."""
    env = environment(
        {
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_FORKS": "20",
        }
    )
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "playbooks/validate.yml", "-i", str(inventory), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # The json callback's document starts on a line of its own ("{"); other
    # callbacks (profile_tasks) may print around it.
    start = proc.stdout.find("\n{\n")
    report, _end = json.JSONDecoder().raw_decode(proc.stdout[start + 1 if start >= 0 else 0 :])
    messages: dict[str, list[str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                # A task's message, then what it reported through Ansible's warnings.
                for text in [result.get("msg"), *result.get("warnings", [])]:
                    if text:
                        messages.setdefault(host, []).append(text if isinstance(text, str) else json.dumps(text))
    failed = {host for host, stats in report["stats"].items() if stats.get("failures")}
    return {"rc": proc.returncode, "stderr": proc.stderr, "stdout": proc.stdout, "messages": messages, "failed": failed}


def write_inventory(directory: Path, hosts: dict[str, dict[str, Any]], vault: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True)
    (directory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"portal": {"hosts": hosts}}}}, allow_unicode=True), encoding="utf-8"
    )
    if vault is not None:
        group_vars = directory / "group_vars" / "all"
        group_vars.mkdir(parents=True)
        plain = group_vars / "vault.yml"
        plain.write_text(yaml.safe_dump(vault, allow_unicode=True), encoding="utf-8")
        password = directory.parent / "vault-password"
        password.write_text(VAULT_PASSWORD)
        subprocess.run(
            [
                str(BIN / "ansible-vault"),
                "encrypt",
                "--vault-id",
                f"mutations@{password}",
                "--encrypt-vault-id",
                "mutations",
                str(plain),
            ],
            cwd=REPO,
            env=environment(),
            check=True,
            capture_output=True,
        )
    return directory


def host_name(case: str) -> str:
    return "case-" + case


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return region77_settings()


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, base) -> dict[str, Any]:
    hosts = {}
    for case, changes, _setting in BAD:
        settings = base
        for path, value in changes.items():
            settings = mutate(settings, path, value)
        hosts[host_name(case)] = settings
    return run_validate(write_inventory(tmp_path_factory.mktemp("bad") / "inventory", hosts))


@pytest.fixture(scope="module")
def valid_run(tmp_path_factory, base) -> dict[str, Any]:
    hosts = {}
    for case, changes in VALID:
        settings = base
        for path, value in changes.items():
            settings = mutate(settings, path, value)
        hosts[host_name(case)] = settings
    return run_validate(write_inventory(tmp_path_factory.mktemp("valid") / "inventory", hosts))


def secret_hosts(base: dict[str, Any], cases: list[tuple[str, dict[str, Any]]]) -> tuple[dict, dict]:
    """Hosts whose secrets come from one real vault file: vault_cases[<host>]."""
    hosts, vault = {}, {"vault_cases": {}}
    for case, spec in cases:
        name = host_name(case)
        entry = {"tsig": spec.get("tsig", TSIG_OK), "pin": spec.get("pin", PIN_OK), "key": spec.get("key", "")}
        entry = {key: value for key, value in entry.items() if value is not DELETE}
        vault["vault_cases"][name] = entry
        settings = {
            **base,
            "portal_domain_tsig_secret": "{{ vault_cases[inventory_hostname].tsig }}",
            "cryptopro_pin": "{{ vault_cases[inventory_hostname].pin }}",
            "portal_https_private_key": "{{ vault_cases[inventory_hostname].key }}",
            **spec.get("settings", {}),
        }
        hosts[name] = settings
    return hosts, vault


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory, base) -> dict[str, Any]:
    cases = [(case, spec) for case, spec, _setting in SECRET_BAD] + [("secrets-valid", {})]
    hosts, vault = secret_hosts(base, cases)
    root = tmp_path_factory.mktemp("secrets")
    inventory = write_inventory(root / "inventory", hosts, vault)
    return run_validate(inventory, "--vault-id", f"mutations@{root / 'vault-password'}")


def named_lines(run: dict[str, Any], case: str) -> list[str]:
    return [
        line.strip()
        for text in run["messages"].get(host_name(case), [])
        for line in text.splitlines()
        if line.strip().startswith("- ")
    ]


def names_setting(line: str, setting: str) -> bool:
    head = line[2:].split(":", 1)[0]
    return head == setting or head.startswith((setting + "[", setting + "."))


def test_bad_group_fails(bad_run):
    assert bad_run["rc"] == 2, bad_run["stderr"]
    assert len(BAD) >= 100


@pytest.mark.parametrize(("case", "changes", "setting"), BAD, ids=[case for case, _c, _s in BAD])
def test_bad_case_is_refused_naming_the_setting(bad_run, case, changes, setting):
    assert bad_run["rc"] == 2
    assert host_name(case) in bad_run["failed"], bad_run["messages"].get(host_name(case))
    lines = named_lines(bad_run, case)
    assert any(names_setting(line, setting) for line in lines), lines
    message = "\n".join(bad_run["messages"][host_name(case)])
    assert f"{host_name(case)}: " in message and "nothing was changed on any host" in message


def test_valid_group_passes(valid_run):
    assert valid_run["rc"] == 0, valid_run["messages"]
    assert valid_run["failed"] == set()


@pytest.mark.parametrize(("case", "changes"), VALID, ids=[case for case, _c in VALID])
def test_valid_case_passes(valid_run, case, changes):
    assert valid_run["rc"] == 0
    assert host_name(case) not in valid_run["failed"]
    assert any("configuration is valid" in text for text in valid_run["messages"][host_name(case)])


def test_weak_but_accepted_algorithm_is_a_warning(valid_run):
    texts = valid_run["messages"][host_name("tsig-sha1-warns")]
    assert any("portal_domain_tsig_algorithm" in text and "deprecated" in text for text in texts), texts


def test_a_setting_no_role_declares_is_a_warning(valid_run):
    texts = valid_run["messages"][host_name("typo-warns")]
    assert any("portal_domain_tll" in text and "did you mean portal_domain_ttl" in text for text in texts), texts


def test_valid_inventory_without_vault_lists_the_unchecked_secrets(valid_run):
    texts = valid_run["messages"][host_name("region77-as-shipped")]
    assert any("vault is not loaded" in text and "cryptopro_pin" in text for text in texts), texts


def test_secret_group_fails(secret_run):
    assert secret_run["rc"] == 2, secret_run["stderr"]


@pytest.mark.parametrize(("case", "spec", "setting"), SECRET_BAD, ids=[case for case, _s, _n in SECRET_BAD])
def test_bad_secret_is_refused_without_showing_it(secret_run, case, spec, setting):
    assert host_name(case) in secret_run["failed"]
    lines = named_lines(secret_run, case)
    assert any(names_setting(line, setting) for line in lines), lines
    for value in (spec.get("tsig"), spec.get("pin"), spec.get("key")):
        if isinstance(value, str) and len(value) > 4:
            assert all(value.strip() not in line for line in lines)
            # Nowhere in the run's whole report either (the task carries no secret in or out).
            assert json.dumps(value.strip())[1:-1] not in secret_run["stdout"], case


def test_valid_secrets_pass_beside_bad_ones(secret_run):
    assert host_name("secrets-valid") not in secret_run["failed"]
    # The secrets task is no_log: its "secrets are valid" is hidden, and a
    # problem would show as a warning.
    assert not any("in the secrets" in text for text in secret_run["messages"].get(host_name("secrets-valid"), []))
    assert TSIG_OK not in secret_run["stdout"] and PIN_OK not in secret_run["stdout"]


@pytest.mark.parametrize(
    "hosts_yml",
    [
        {"all": {"hosts": {"portal77": {"ansible_host": "203.0.113.10"}}}},
        {"all": {"children": {"portals": {"hosts": {"portal77": {}}}}}},
        {"all": {}},
    ],
    ids=["host-outside-portal", "misspelt-group", "no-hosts"],
)
def test_inventory_without_portal_hosts_is_refused(tmp_path, hosts_yml):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts_yml))
    run = run_validate(inventory)
    assert run["rc"] != 0
    assert any("no host in the group `portal`" in text for text in run["messages"].get("localhost", [])), run
