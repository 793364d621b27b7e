"""core.lazy: a package's re-exports and a CLI's library modules imported on first use."""

from __future__ import annotations

import sys
import textwrap

import pytest

from transferscope.core.lazy import lazy_module, type_checking_imports


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``lazypkg`` written like the parts' ``__init__``: exports ``heavy_value``
    (from ``heavy.py``, which records its import), ``tool`` (a function that shares its name
    with the subpackage ``tool/``, as bias's ``debias`` does) and ``Light``."""
    root = tmp_path / "lazypkg"
    (root / "tool").mkdir(parents=True)
    (root / "__init__.py").write_text(textwrap.dedent("""
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from lazypkg.heavy import heavy_value
            from lazypkg.light import Light
            from lazypkg.tool.run import tool
        else:
            from transferscope.core.lazy import lazy_exports

            lazy_exports(__name__)

        __all__ = ["Light", "heavy_value", "tool"]
    """))
    (root / "heavy.py").write_text("import sys\nsys.modules['lazypkg'].IMPORTS.append('heavy')"
                                   "\nheavy_value = 42\n")
    (root / "light.py").write_text("class Light:\n    pass\n")
    (root / "other.py").write_text("VALUE = 'other'\n")
    (root / "tool" / "__init__.py").write_text("")
    (root / "tool" / "run.py").write_text("def tool():\n    return 'the function'\n")
    (root / "tool" / "extra.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == "lazypkg" or m.startswith("lazypkg.")]:
        del sys.modules[name]


def test_the_type_checking_block_is_read(package):
    found = type_checking_imports(package / "__init__.py", "lazypkg")
    assert found == {"heavy_value": "lazypkg.heavy:heavy_value", "Light": "lazypkg.light:Light",
                     "tool": "lazypkg.tool.run:tool"}


def test_names_are_imported_on_first_use_only(package):
    import lazypkg

    lazypkg.IMPORTS = []
    assert "lazypkg.heavy" not in sys.modules
    assert lazypkg.heavy_value == 42 and lazypkg.IMPORTS == ["heavy"]
    assert lazypkg.heavy_value == 42 and lazypkg.IMPORTS == ["heavy"]  # imported once
    from lazypkg import Light

    assert Light.__name__ == "Light"
    assert {"Light", "heavy_value", "tool"} <= set(dir(lazypkg))


def test_submodules_still_import_and_unknown_names_fail(package):
    import lazypkg
    from lazypkg import other

    assert other.VALUE == "other"
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        lazypkg.nothing  # noqa: B018


def test_an_export_wins_over_a_submodule_of_the_same_name(package):
    import lazypkg
    import lazypkg.tool.extra  # binds the subpackage 'tool' first, as an import elsewhere would

    assert lazypkg.tool() == "the function"
    from lazypkg import tool

    assert tool() == "the function"


def test_lazy_module_imports_on_first_attribute(package):
    proxy = lazy_module("lazypkg.other")
    assert "lazypkg.other" not in sys.modules and "not loaded yet" in repr(proxy)
    assert proxy.VALUE == "other" and "lazypkg.other" in sys.modules
    assert lazy_module("lazypkg.other") is sys.modules["lazypkg.other"]
