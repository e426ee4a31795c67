"""Documentation that cannot break silently.

`ansible-doc` renders every module in library/, every filter of
filter_plugins/ and every role; the lists come from the tree, so a module,
filter or role added later is covered without touching this file. The
variable tables of the role READMEs are what tools/role_docs.py generates from
meta/argument_specs.yml (`make docs`): regenerated in memory and compared.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness import BIN, REPO, environment
from tools import role_docs

LIBRARY = REPO / "library"
FILTER_DIR = REPO / "filter_plugins"
ROLES = REPO / "roles"

MODULES = sorted(p.stem for p in LIBRARY.glob("*.py") if not p.stem.startswith("_"))
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir())


def filter_names() -> dict[str, str]:
    """filter name -> the filter_plugins/ file that defines it (FilterModule.filters())."""
    found = {}
    for path in sorted(FILTER_DIR.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"filter_plugins.{path.stem}")
        plugin = getattr(module, "FilterModule", None)
        for name in plugin().filters() if plugin else ():
            found[name] = path.name
    return found


FILTERS = filter_names()


def ansible_doc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ansible-doc"), *args],
        cwd=REPO,
        env=environment({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def failures(proc: subprocess.CompletedProcess) -> str:
    return "" if proc.returncode == 0 and "[ERROR]" not in proc.stderr else proc.stderr[-3000:] or "failed"


def json_docs(names: list[str], *args: str) -> dict[str, dict | str]:
    """name -> its ansible-doc JSON, or the error ansible-doc gave for it.
    One call for all; one call per name only when that fails."""
    proc = ansible_doc("--json", *args, *names)
    if not failures(proc):
        found = json.loads(proc.stdout)
        return {n: found.get(n, "ansible-doc found no documentation") for n in names}
    result = {}
    for name in names:
        one = ansible_doc("--json", *args, name)
        result[name] = failures(one) or json.loads(one.stdout).get(name, "ansible-doc found no documentation")
    return result


def assert_renders(kind: str, header: str, names: list[str], *args: str) -> None:
    """The text rendering (what an operator reads) of every name works."""
    proc = ansible_doc(*args, *names)
    if failures(proc) or any(f"{header}{n}" not in proc.stdout for n in names):
        broken = {}
        for name in names:
            one = ansible_doc(*args, name)
            error = failures(one) or ("" if f"{header}{name}" in one.stdout else "no page rendered")
            if error:
                broken[name] = error
        assert not broken, f"ansible-doc cannot render these {kind}s:\n" + "\n".join(
            f"{n}: {e}" for n, e in broken.items()
        )


def entry_for(docs: dict, name: str) -> dict:
    entry = docs[name]
    assert isinstance(entry, dict), f"{name}: {entry}"
    return entry


def assert_strings(where: str, value) -> None:
    """description-like fields: a string or a list of strings (a YAML slip,
    such as an unquoted `key: value`, turns a line into a mapping)."""
    items = value if isinstance(value, list) else [value]
    assert items and all(isinstance(i, str) and i.strip() for i in items), f"{where}: not text: {value!r}"


def assert_options(where: str, options: dict) -> None:
    for name, spec in (options or {}).items():
        assert_strings(f"{where} option {name} description", spec.get("description"))
        assert spec.get("type"), f"{where}: option {name} has no type"
        assert_options(f"{where} option {name}", spec.get("suboptions") or spec.get("options"))


def test_the_tree_has_what_is_documented():
    assert MODULES and FILTERS and ROLE_NAMES


# ---------------------------------------------------------------- modules


def test_every_module_renders():
    assert_renders("module", "> MODULE ", MODULES, "-M", str(LIBRARY))


@pytest.fixture(scope="module")
def module_docs() -> dict:
    return json_docs(MODULES, "-M", str(LIBRARY))


@pytest.mark.parametrize("name", MODULES)
def test_module_documentation_is_complete(name, module_docs):
    entry = entry_for(module_docs, name)
    doc = entry["doc"]
    assert_strings(f"{name} short_description", doc.get("short_description"))
    assert_strings(f"{name} description", doc.get("description"))
    assert_strings(f"{name} author", doc.get("author"))
    assert_strings(f"{name} requirements", doc.get("requirements"))
    assert_options(name, doc.get("options"))
    assert (entry.get("examples") or "").strip(), f"{name} has no EXAMPLES"
    examples = yaml.safe_load(entry["examples"])
    assert isinstance(examples, list) and examples, f"{name}: EXAMPLES is not a list of tasks"
    assert isinstance(entry.get("return"), dict) and entry["return"], f"{name} has no RETURN"
    for key, value in entry["return"].items():
        assert_strings(f"{name} RETURN {key} description", value.get("description"))


# ---------------------------------------------------------------- filters


def test_every_filter_renders():
    assert_renders("filter", "> FILTER ", sorted(FILTERS), "-t", "filter")


def test_every_filter_sidecar_documents_a_real_filter():
    orphans = [p.name for p in FILTER_DIR.glob("*.yml") if p.stem not in FILTERS]
    assert not orphans, f"documentation for filters that do not exist: {orphans}"


@pytest.fixture(scope="module")
def filter_docs() -> dict:
    return json_docs(sorted(FILTERS), "-t", "filter")


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_documentation_is_complete(name, filter_docs):
    where = f"{name} ({FILTERS[name]}; docs in filter_plugins/{name}.yml)"
    entry = entry_for(filter_docs, name)
    doc = entry["doc"]
    assert_strings(f"{where} short_description", doc.get("short_description"))
    assert_strings(f"{where} description", doc.get("description"))
    assert_options(where, doc.get("options"))
    assert (entry.get("examples") or "").strip(), f"{where} has no EXAMPLES"
    assert entry.get("return"), f"{where} has no RETURN"


# ---------------------------------------------------------------- roles


def test_every_role_has_an_argument_spec():
    missing = [r for r in ROLE_NAMES if not (ROLES / r / "meta" / "argument_specs.yml").is_file()]
    assert not missing, f"roles without meta/argument_specs.yml: {missing}"


def test_every_role_renders():
    assert_renders("role", "> ROLE: *", ROLE_NAMES, "-t", "role", "-r", str(ROLES))


@pytest.mark.parametrize("name", ROLE_NAMES)
def test_role_documentation_is_complete(name):
    entry_points = entry_for(json_docs([name], "-t", "role", "-r", str(ROLES)), name)["entry_points"]
    assert "main" in entry_points, f"role {name} documents no main entry point"
    for entry, spec in entry_points.items():
        assert_strings(f"{name}:{entry} short_description", spec.get("short_description"))
        assert_options(f"{name}:{entry}", spec.get("options"))


# ---------------------------------------------------------------- README tables


@pytest.mark.parametrize("name", ROLE_NAMES)
def test_role_readme_variables_match_the_argument_spec(name):
    readme, current, fresh = role_docs.expected(ROLES / name)
    assert current == fresh, (
        f"{readme.relative_to(REPO)}: its variable table drifted from the argument spec: run `make docs`"
    )


def spec(options: dict, **entry) -> dict:
    return {"argument_specs": {"main": {"short_description": "Test.", "options": options}, **entry}}


def test_generated_rows_cover_every_option_at_any_depth():
    options = {
        "top": {
            "type": "list",
            "elements": "dict",
            "description": ["First line.", "Second line\nwrapped."],
            "options": {
                "kind": {"type": "str", "choices": ["a", "b|c"], "required": True, "description": "A C(kind)."},
                "inner": {
                    "type": "dict",
                    "description": "Nested.",
                    "options": {"deep": {"type": "int", "default": 3, "description": "Deepest."}},
                },
            },
        },
        "flag": {"type": "bool", "default": False, "description": "I(Yes) or no.", "no_log": True},
        "text": {"type": "str", "default": "", "description": "Empty by default; <name> stays visible."},
    }
    block = role_docs.render(spec(options))
    lines = block.splitlines()
    assert lines[0] == role_docs.BEGIN and lines[-1] == role_docs.END
    table = [line for line in lines if line.startswith("| `")]
    names = [line.split("`")[1] for line in table]
    assert names == ["top", "top[].kind", "top[].inner", "top[].inner.deep", "flag", "text"]
    for line in table:
        # four cells on one line: a pipe inside a value must be escaped
        assert line.replace("\\|", "").count("|") == 5, line
    row = dict(zip(names, table, strict=True))
    assert "First line. Second line wrapped." in row["top"]
    assert "list of dict" in row["top"]
    assert "`a`" in row["top[].kind"] and "b\\|c" in row["top[].kind"] and "required" in row["top[].kind"]
    assert "`kind`" in row["top[].kind"] and "C(" not in row["top[].kind"]
    assert "`3`" in row["top[].inner.deep"]
    assert "`false`" in row["flag"] and "*Yes*" in row["flag"] and "not logged" in row["flag"]
    assert '`""`' in row["text"] and "&lt;name>" in row["text"]


def test_generated_block_names_each_entry_point():
    specs = spec({"a": {"type": "str", "description": "A."}})
    specs["argument_specs"]["extra"] = {"short_description": "Another way in.", "options": {}}
    block = role_docs.render(specs)
    assert block.index("Entry point `main`") < block.index("Entry point `extra`")
    assert "No variables." in block


def test_a_spec_without_description_is_refused():
    with pytest.raises(role_docs.SpecError, match="x has no description"):
        role_docs.render(spec({"x": {"type": "str"}}))


def test_regenerate_replaces_only_the_block():
    block = role_docs.render(spec({"a": {"type": "str", "description": "A."}}))
    readme = f"# r\n\nIntro.\n\n## Role Variables\n\nSee below.\n\n{role_docs.BEGIN}\nold\n{role_docs.END}\n\nAfter.\n"
    fresh = role_docs.regenerate(readme, block)
    assert fresh.startswith("# r\n\nIntro.\n\n## Role Variables\n\nSee below.\n\n")
    assert fresh.endswith("\n\nAfter.\n") and "old" not in fresh and block in fresh
    assert role_docs.regenerate(fresh, block) == fresh


def test_regenerate_puts_the_markers_in_place_of_a_hand_written_table():
    block = role_docs.render(spec({"a": {"type": "str", "description": "A."}}))
    readme = "# r\n\n## Role Variables\n\nText.\n\n| variable | meaning |\n|---|---|\n| `a` | A |\n\nMore.\n\n## Next\n"
    fresh = role_docs.regenerate(readme, block)
    assert "| `a` | A |" not in fresh
    assert fresh.index("Text.") < fresh.index(role_docs.BEGIN) < fresh.index("More.") < fresh.index("## Next")
    bare = role_docs.regenerate("# r\n\n## Role Variables\n\n## Next\n", block)
    assert bare.index("## Role Variables") < bare.index(role_docs.BEGIN) < bare.index("## Next")
    with pytest.raises(role_docs.SpecError, match="Role Variables"):
        role_docs.regenerate("# r\n\nNo section.\n", block)


def test_check_mode_reports_drift_and_rewrite_fixes_it(tmp_path: Path, capsys):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(
        yaml.safe_dump(spec({"demo_port": {"type": "int", "default": 53, "description": "Port."}}))
    )
    (role / "README.md").write_text("# demo\n\n## Role Variables\n\n| variable | meaning |\n|---|---|\n")
    roles = ["--roles", str(tmp_path / "roles")]
    assert role_docs.main(["--check", *roles]) == 1
    assert "differs" in capsys.readouterr().out
    assert role_docs.main(roles) == 0
    assert "`demo_port`" in (role / "README.md").read_text()
    assert role_docs.main(["--check", *roles]) == 0
