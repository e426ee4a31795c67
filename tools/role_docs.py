"""The variable tables of the role READMEs, generated from meta/argument_specs.yml.

    python tools/role_docs.py          rewrite every roles/*/README.md block
    python tools/role_docs.py --check  exit 1 and name every README that drifted

Each README holds one block (every entry point's table) between the markers

    <!-- BEGIN generated: variables -->
    ...
    <!-- END generated -->

and only that block is rewritten; everything around it belongs to the role's
author. `make docs` runs this; tests/unit/test_docs.py regenerates the blocks
in memory and fails when a README differs.

Every option of every entry point becomes a row: its name, type (with the
element type of a list, and the choices), default (or "required"), and its
description with Ansible's markup (C(), O(), I(), ...) turned into Markdown.
Suboptions (type dict or a list of dicts with `options`) follow their parent
as `parent.child` or `parent[].child`, to any depth.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ROLES = REPO / "roles"
BEGIN = "<!-- BEGIN generated: variables -->"
END = "<!-- END generated -->"
NOTE = "<!-- from meta/argument_specs.yml by `make docs` (tools/role_docs.py): edit the spec, not this table -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)

# Ansible's documentation markup -> Markdown
_MARKUP = [
    (re.compile(r"\bL\(([^)]*?),\s*([^)]*)\)"), r"[\1](\2)"),
    (re.compile(r"\bU\(([^)]*)\)"), r"<\1>"),
    (re.compile(r"\bB\(([^)]*)\)"), r"**\1**"),
    (re.compile(r"\bI\(([^)]*)\)"), r"*\1*"),
    (re.compile(r"\b(?:C|O|V|RV|M|E|P)\(([^()]*(?:\([^()]*\)[^()]*)*)\)"), r"`\1`"),
]


class SpecError(ValueError):
    """An argument spec the generator cannot read (names the file and the option)."""


def markdown(text: str) -> str:
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text


_CODE_SPAN = re.compile(r"(``.*?``|`[^`]*`)")


def cell(text: str) -> str:
    """One table cell: a single line; pipes escaped everywhere, and outside
    code spans backslashes and `<` too (so `<name>` is not taken for HTML)."""
    parts = _CODE_SPAN.split(" ".join(text.split()))
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("\\", "\\\\").replace("<", "&lt;")
    return "".join(parts).replace("|", "\\|")


def code(value: object) -> str:
    """A value as inline code; YAML flow style, one line."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False) if value == "" or value.strip() != value else value
    else:
        text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6, sort_keys=False)
        text = text.strip()
        if text.endswith("\n...") or text.endswith("..."):
            text = text.rsplit("...", 1)[0].strip()
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def description(spec: dict) -> str:
    raw = spec.get("description", "")
    parts = raw if isinstance(raw, list) else [raw]
    return " ".join(markdown(str(p).strip()) for p in parts if p is not None and str(p).strip())


def type_text(spec: dict) -> str:
    kind = str(spec.get("type", "str"))
    if kind == "list" and "elements" in spec:
        kind = f"list of {spec['elements']}"
    if "choices" in spec:
        choices = spec["choices"]
        if isinstance(choices, dict):
            choices = list(choices)
        kind += ": " + ", ".join(code(c) for c in choices)
    return kind


def default_text(spec: dict) -> str:
    if spec.get("required"):
        return "required"
    if "default" not in spec or spec["default"] is None:
        return "—"
    return code(spec["default"])


def rows(options: dict, prefix: str = "", where: str = "") -> Iterator[str]:
    if not isinstance(options, dict):
        raise SpecError(f"{where}: `options` must be a mapping of option name to its spec")
    for name, spec in options.items():
        full = f"{prefix}{name}"
        if not isinstance(spec, dict):
            raise SpecError(f"{where}: option {full} must be a mapping (type, default, description)")
        if not spec.get("description"):
            raise SpecError(f"{where}: option {full} has no description")
        extra = []
        if spec.get("aliases"):
            extra.append("Aliases: " + ", ".join(code(a) for a in spec["aliases"]) + ".")
        if spec.get("no_log"):
            extra.append("Secret (not logged).")
        text = " ".join([description(spec), *extra])
        yield f"| `{full}` | {cell(type_text(spec))} | {cell(default_text(spec))} | {cell(text)} |"
        if "options" in spec:
            child = f"{full}[]." if spec.get("type") == "list" else f"{full}."
            yield from rows(spec["options"], child, where)


def render(specs: dict, where: str = "argument_specs.yml") -> str:
    """The generated block (markers included) for one role's argument specs."""
    entry_points = (specs or {}).get("argument_specs")
    if not isinstance(entry_points, dict) or not entry_points:
        raise SpecError(f"{where}: no argument_specs entry points")
    names = sorted(entry_points, key=lambda n: (n != "main", n))
    out = [BEGIN, NOTE, ""]
    for name in names:
        entry = entry_points[name] or {}
        if len(names) > 1:
            out += [f"Entry point `{name}`: {cell(markdown(str(entry.get('short_description', ''))))}", ""]
        options = entry.get("options") or {}
        if not options:
            out += ["No variables.", ""]
            continue
        out += ["| variable | type | default | meaning |", "|---|---|---|---|"]
        out += list(rows(options, where=f"{where} ({name})"))
        out.append("")
    out.append(END)
    return "\n".join(out)


def role_dirs(roles: Path = ROLES) -> list[Path]:
    return sorted(p for p in roles.iterdir() if (p / "meta" / "argument_specs.yml").is_file())


_HEADING = re.compile(r"^##\s+(?:Role\s+)?Variables\s*$", re.MULTILINE | re.IGNORECASE)


def regenerate(readme_text: str, block: str, where: str = "README.md") -> str:
    """The README with its generated block replaced.

    A README without the markers gets them: under its `## Role Variables`
    heading, in place of the hand-written table that starts with
    `| variable` there, or right below the heading."""
    found = _BLOCK.findall(readme_text)
    if len(found) == 1:
        return _BLOCK.sub(lambda _m: block, readme_text)
    if found:
        raise SpecError(f"{where}: {len(found)} generated variable blocks; keep one ({BEGIN!r} ... {END!r})")
    heading = _HEADING.search(readme_text)
    if not heading:
        raise SpecError(
            f"{where}: no '## Role Variables' heading and no {BEGIN!r} ... {END!r} block; "
            "add the heading (the table is generated below it)"
        )
    head, tail = readme_text[: heading.end()], readme_text[heading.end() :]
    section_end = re.search(r"^## ", tail, re.MULTILINE)
    section = tail[: section_end.start()] if section_end else tail
    rest = tail[len(section) :]
    table = re.search(r"^\| *variable.*\n(?:\|.*(?:\n|$))*", section, re.MULTILINE)
    if table:
        section = section[: table.start()] + block + "\n" + section[table.end() :]
    else:
        section = "\n\n" + block + "\n" + section.lstrip("\n")
        if not section.endswith("\n\n") and rest:
            section += "\n"
    return head + section + rest


def expected(role: Path) -> tuple[Path, str, str]:
    """(README path, current text, text with a fresh block) for one role."""
    spec_file = role / "meta" / "argument_specs.yml"
    readme = role / "README.md"
    block = render(yaml.safe_load(spec_file.read_text(encoding="utf-8")), f"{role.name}/meta/argument_specs.yml")
    current = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    return readme, current, regenerate(current, block, f"{role.name}/README.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README differs")
    parser.add_argument("--roles", type=Path, default=ROLES, help="roles directory (default: the repository's)")
    args = parser.parse_args(argv)
    drifted, errors = [], []
    for role in role_dirs(args.roles):
        try:
            readme, current, fresh = expected(role)
        except (SpecError, yaml.YAMLError) as exc:
            errors.append(str(exc))
            continue
        if current != fresh:
            drifted.append(readme)
            if not args.check:
                readme.write_text(fresh, encoding="utf-8")
    for error in errors:
        print(f"role_docs: {error}", file=sys.stderr)
    for readme in drifted:
        print(f"role_docs: {'differs' if args.check else 'rewrote'} {readme}")
    if args.check and drifted:
        print("role_docs: run `make docs` to regenerate the variable tables", file=sys.stderr)
    return 1 if errors or (args.check and drifted) else 0


if __name__ == "__main__":
    sys.exit(main())
