"""docs/api.md is the public API as the source declares it (scripts/build_api_docs.py)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_api_docs",
                                                  ROOT / "scripts" / "build_api_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def page(builder):
    return builder.build()


def test_api_page_is_current(builder, capsys):
    code = builder.main(["--check"])
    # the message names the command that regenerates the page
    assert code == 0, capsys.readouterr().err


def test_a_stale_page_fails_the_check_with_the_command(builder, page, tmp_path, capsys):
    stale = tmp_path / "api.md"
    stale.write_text(page.replace("recommend_stop", "recommend_stopping", 1))
    assert builder.main(["--check", "--output", str(stale)]) == 1
    assert "python scripts/build_api_docs.py" in capsys.readouterr().err


@pytest.mark.parametrize("part", ["ntk", "dino", "bias"])
def test_each_exported_name_has_its_section(page, part):
    """The page's headings of a part are the package's ``__all__`` as Python sees it (the
    builder reads the source without importing it)."""
    package = importlib.import_module(f"transferscope.{part}")
    start = page.index(f"## `transferscope.{part}`")
    end = page.find("\n## ", start + 1)
    body = page[start:end if end > 0 else None]
    assert re.findall(r"^### `([^`]+)`", body, flags=re.M) == list(package.__all__)


def test_numpydoc_sections_render_as_markdown(builder):
    doc = ("Sum two numbers.\n\nParameters\n----------\na : int\n    The first,\n    on two "
           "lines.\nb : float, optional\n    See :func:`~pkg.mod.other`.\n\nReturns\n-------\n"
           "float\n    ``a + b``.\n")
    assert builder.numpydoc_markdown(doc).splitlines() == [
        "Sum two numbers.", "", "**Parameters**", "",
        "- `a` (int): The first, on two lines.",
        "- `b` (float, optional): See `other`.", "", "**Returns**", "",
        "- `float`: `a + b`."]
