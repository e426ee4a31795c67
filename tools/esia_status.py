"""The controller side of playbooks/status.yml (run as `python -m tools.esia_status` from the repository root).

evaluate   stdin: one host's observations (JSON, see docs/status.md);
           stdout: the host's entry of the status document. Reads the GOST
           certificate with the `x509_info` filter and probes DNS and HTTPS.
write      stdin: {"artifacts_root": DIR, "hosts": [{"region", "org", "entry"}, ...]};
           writes DIR/<region>/status.json and status.html, prints
           {"written": [paths], "table": text}. When ESIA_STATUS_INDEX names
           a file, the written status.json paths are appended to it (the
           fleet dashboard's --inventory mode reads it).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import importlib
import json
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools import probes
from tools.html_report import region_page
from tools.readiness import evaluate, region_document, text_table

INDEX_ENV = "ESIA_STATUS_INDEX"


def find_filter(name: str) -> Callable[..., Any]:
    """A filter of the repository's filter_plugins/, by its Ansible name."""
    import filter_plugins

    for module_info in pkgutil.iter_modules(filter_plugins.__path__):
        module = importlib.import_module(f"filter_plugins.{module_info.name}")
        filter_module = getattr(module, "FilterModule", None)
        if filter_module is not None and name in (filters := filter_module().filters()):
            return filters[name]
    raise LookupError(f"filter {name} is not in filter_plugins/")


def read_certificate(on_host: dict[str, Any]) -> None:
    """Replace the slurped certificate content by what x509_info reads from it."""
    certificate = on_host.get("certificate")
    if not isinstance(certificate, dict) or not certificate.get("content"):
        return
    content = certificate.pop("content")
    try:
        certificate["info"] = dict(find_filter("x509_info")(content))
    except Exception as error:  # x509_info names what is wrong with the file
        certificate["error"] = str(error)


def read_expiry(on_host: dict[str, Any]) -> None:
    """Replace the slurped expiry state (roles/portal_monitoring) by the JSON it holds."""
    expiry = on_host.get("expiry")
    if not isinstance(expiry, dict):
        return
    content = expiry.pop("content", "")
    if not content:
        return
    try:
        expiry["state"] = json.loads(base64.b64decode(content))
    except (ValueError, binascii.Error) as error:
        expiry["error"] = f"не JSON: {error}"


def cmd_evaluate(observations: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    read_certificate(observations.get("on_host") or {})
    read_expiry(observations.get("on_host") or {})
    network = probes.collect(observations.get("settings") or {})
    return evaluate(observations, network, now=now)


def cmd_write(request: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    root = Path(request["artifacts_root"])
    regions: dict[str, dict[str, Any]] = {}
    for host in request.get("hosts", []):
        region = regions.setdefault(str(host["region"]), {"org": host.get("org") or "", "entries": []})
        region["entries"].append(host["entry"])
    written, tables = [], []
    for code in sorted(regions):
        document = region_document(code, regions[code]["org"], regions[code]["entries"], now)
        directory = root / code
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(directory / "status.json", json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        _write_atomically(directory / "status.html", region_page(document, now))
        written.append(str(directory / "status.json"))
        tables.append(text_table(document))
    if index := os.environ.get(INDEX_ENV):
        with open(index, "a", encoding="utf-8") as handle:
            handle.writelines(f"{path}\n" for path in written)
    return {"written": written, "table": "\n\n".join(tables)}


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.esia_status", description=__doc__)
    parser.add_argument("action", choices=["evaluate", "write"])
    args = parser.parse_args(argv)
    request = json.load(sys.stdin)
    result = cmd_evaluate(request) if args.action == "evaluate" else cmd_write(request)
    json.dump(result, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
