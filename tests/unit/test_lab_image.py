"""The lab image recipe: tag follows the recipe, the mirror comes from apt sources."""

import pytest

from lab import image


def test_mirror_from_deb822(tmp_path, monkeypatch):
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
    )
    monkeypatch.setattr(image, "APT_SOURCES", (sources,))
    assert image.local_mirror() == "http://mirror.invalid/debian"


def test_mirror_from_one_line_format(tmp_path, monkeypatch):
    sources = tmp_path / "sources.list"
    sources.write_text("# comment\ndeb [arch=amd64] http://other.invalid/debian bookworm main\n")
    monkeypatch.setattr(image, "APT_SOURCES", (tmp_path / "absent", sources))
    assert image.local_mirror() == "http://other.invalid/debian"


def test_no_mirror_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "APT_SOURCES", (tmp_path / "absent",))
    with pytest.raises(RuntimeError, match="no Debian mirror"):
        image.local_mirror()


def test_tag_changes_with_the_recipe(tmp_path, monkeypatch):
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"packages": ["python3"]}')
    monkeypatch.setattr(image, "RECIPE", recipe)
    first = image.tag()
    recipe.write_text('{"packages": ["python3", "systemd"]}')
    assert image.tag() != first
    assert image.reference().startswith("localhost/")


def test_recipe_never_names_a_mirror():
    assert "http" not in image.RECIPE.read_text()
