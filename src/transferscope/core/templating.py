"""Jinja2 templates shipped with the package: one environment, every value escaped.

Templates live in a ``templates`` folder beside the module that renders them (package data);
:func:`render_html` escapes every value for HTML (autoescape) after writing its control
characters as visible escapes (:func:`~transferscope.core.hygiene.visible_controls`), so text
from a dataset or a model reply is shown, never run. Templates only lay out what the caller
computed; no computation happens in them.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from transferscope.core.hygiene import visible_controls

if TYPE_CHECKING:
    import jinja2


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: ``None`` as empty, controls made visible (escaped after this);
    markup the template itself built (a macro's output) passes unchanged."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return value
    return "" if value is None else visible_controls(value)


@cache
def _environment(package: str) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"),
                              autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_html(package: str, template: str, **context: Any) -> str:
    """Render ``template`` from ``package``'s ``templates`` folder with ``context``.

    Parameters
    ----------
    package : str
        The package whose ``templates`` folder holds the template (``"transferscope.core"``).
    template : str
        The template's file name (``"report.html.j2"``).
    **context : Any
        The values the template lays out; every one is escaped when written.

    Returns
    -------
    str
        The page.
    """
    return _environment(package).get_template(template).render(**context)
