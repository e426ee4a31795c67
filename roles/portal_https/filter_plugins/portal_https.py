"""Filters of the portal_https role: check a TLS certificate before nginx sees it.

- `portal_https_certificate_check`: the checks run before nginx is touched (key
  matches certificate, SAN covers every name, chain order, validity, expiry
  warning). Returns the problems instead of raising, so a task can run it with
  `no_log` (it may be handed the private key) and another task can report it.
- `portal_https_ca_certificate`: read a CA certificate (PEM, or base64 of what
  `slurp` returns for a PEM or DER file) and give its SHA-256 fingerprint and
  PEM form, for pinning the Russian Trusted Root CA.
- `portal_https_ascii_name`: a DNS name in the form nginx and certificates use
  (IDNA A-labels, lower case, no trailing dot), so `запись.миац.рф` works.
- `portal_https_acme_plan`: whether the certificate installed on the host must
  be ordered again from the ACME CA (missing, other key, names not covered,
  fewer than the renewal days left, or forced), with the reason.
- `portal_https_acme_plans` / `portal_https_acme_due`: the plan of every acme
  site from what library/portal_https_tls.py read, and the sites due.
- `portal_https_stapling`: whether OCSP stapling can be turned on for a checked
  certificate (an OCSP URL, and a chain that verifies up to a root nginx
  trusts), and why not.
- `portal_https_key_type`: the key type the role makes for a certificate
  source (`auto`: RSA for `provided`, ECDSA P-256 for the others).
"""

from __future__ import annotations

import functools

import ansible.module_utils
from ansible.errors import AnsibleFilterError

_MODULE_UTILS = str(__import__("pathlib").Path(__file__).resolve().parents[3] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
from ansible.module_utils.esia_onboard import tls  # noqa: E402

# The rules live in module_utils/esia_onboard/tls.py (the portal_https_*
# modules apply the same ones); a filter only turns their errors into
# AnsibleFilterError.


def _filter(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except tls.TlsError as exc:
            raise AnsibleFilterError(str(exc)) from exc

    return wrapper


portal_https_acme_plan = _filter(tls.portal_https_acme_plan)
portal_https_acme_plans = _filter(tls.portal_https_acme_plans)
portal_https_acme_due = _filter(tls.portal_https_acme_due)
portal_https_recorded_source = _filter(tls.portal_https_recorded_source)
portal_https_stapling = _filter(tls.portal_https_stapling)
portal_https_key_type = _filter(tls.portal_https_key_type)
portal_https_acme_challenge_for = _filter(tls.portal_https_acme_challenge_for)
portal_https_stock_conffile = _filter(tls.portal_https_stock_conffile)
portal_https_certificate_check = _filter(tls.portal_https_certificate_check)
portal_https_ca_certificate = _filter(tls.portal_https_ca_certificate)
portal_https_ascii_name = _filter(tls.portal_https_ascii_name)


class FilterModule:
    def filters(self) -> dict:
        return {
            name: globals()[name]
            for name in (
                "portal_https_acme_plan",
                "portal_https_acme_plans",
                "portal_https_acme_due",
                "portal_https_recorded_source",
                "portal_https_stapling",
                "portal_https_key_type",
                "portal_https_acme_challenge_for",
                "portal_https_stock_conffile",
                "portal_https_certificate_check",
                "portal_https_ca_certificate",
                "portal_https_ascii_name",
            )
        }
