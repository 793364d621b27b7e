"""The jinja2 environment of the HTML pages: every value escaped, controls visible, a missing
value an error, the templates shipped as package data."""

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import jinja2
import pytest

from transferscope.core.templating import render_html

ROOT = Path(__file__).resolve().parents[2]


def test_values_are_escaped_and_controls_shown():
    page = render_html("transferscope.bias", "items.html.j2", title="<script>x</script>\x1b[2J",
                       rows=[])
    assert "<script>x" not in page
    assert "<title>&lt;script&gt;x&lt;/script&gt;\\x1b[2J</title>" in page
    assert "\x1b" not in page and "0 items" in page


def test_a_value_the_template_needs_is_required():
    with pytest.raises(jinja2.UndefinedError, match="rows"):
        render_html("transferscope.bias", "items.html.j2", title="t")


def test_every_template_is_package_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["transferscope"]
    templates = sorted((ROOT / "src" / "transferscope").rglob("templates/*"))
    assert {t.name for t in templates} >= {"report.html.j2", "items.html.j2"}
    for template in templates:
        inside = template.relative_to(ROOT / "src" / "transferscope").as_posix()
        assert any(fnmatch(inside, g) for g in globs), inside
