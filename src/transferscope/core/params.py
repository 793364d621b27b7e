"""Each parameter declared once: its type, its allowed values and its help text.

A parameter is declared where it is held, as an annotation::

    Depth = Annotated[int, Spec(ge=1, help="Hidden layers of the ReLU network.")]

    @dataclass(kw_only=True, frozen=True)
    class FitConfig(Validated):
        depth: Depth = 3
        kernel: Annotated[Literal["ntk", "nngp"], Spec(help="NTK (DINO-TRAIN) or NNGP.")] = "ntk"

The type says what kind of value (``int``, ``float``, ``bool``, ``str``, ``Path``, a
``Literal[...]`` or ``StrEnum`` of choices, ``X | None``, ``tuple[X, ...]``); :class:`Spec`
adds the interval (``ge``/``gt``/``le``/``lt``), an extra rule and the help. Three readers use
the one declaration:

1. a keyword-only dataclass deriving from :class:`Validated` checks every field when it is
   constructed;
2. a scikit-learn estimator deriving from :class:`ValidatedEstimator` checks its ``__init__``
   parameters (stored as passed) when ``fit`` calls ``self._validate_params()``, as
   scikit-learn's own estimators do with ``_parameter_constraints``;
3. a command line builds the Typer option with :func:`option`: the help text gains the
   choices or the range, a callback refuses a bad value before anything runs, and the default
   is the class's own.

A bad value is one :class:`~transferscope.core.errors.InputError` (a ``ValueError``) naming
the class, the parameter, the value and what was expected, e.g.
``DINORegressor: depth = 0: expected a whole number >= 1``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import numpy as np

from transferscope.core.errors import InputError, describe_value

__all__ = [
    "FROM_OPTIONS",
    "Declared",
    "OptionGroup",
    "Spec",
    "Validated",
    "ValidatedEstimator",
    "check_params",
    "comma_list",
    "declarations",
    "option",
    "undeclared",
    "with_groups",
]

_MISSING: Any = dataclasses.MISSING


@dataclass(frozen=True, kw_only=True, slots=True)
class Spec:
    """What a parameter's type does not say: the interval its numbers lie in, an extra rule,
    and the help text the command line and the docs show.

    Parameters
    ----------
    help : str
        One sentence in the user's words; the command line appends the choices or the range.
    ge, gt, le, lt : float, optional
        Bounds of the interval (``>=``, ``>``, ``<=``, ``<``); for a ``tuple[X, ...]`` they
        hold for each element.
    finite : bool, default True
        Refuse ``nan`` and infinities (set False where ``inf`` means "no limit").
    rule : callable, optional
        ``rule(value) -> None | str``: a further check; the string says what was expected.
    """

    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True
    rule: Callable[[Any], str | None] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Declared:
    """One parameter as read from its annotation: what :func:`check_params` checks and what
    :func:`option` shows."""

    name: str
    kinds: tuple[type, ...]  # accepted types; () when the annotation cannot be checked
    choices: tuple[Any, ...] | None
    optional: bool
    sequence: bool  # tuple[X, ...] / list[X]: each element is checked as X
    spec: Spec | None
    default: Any

    @property
    def help(self) -> str:
        return self.spec.help if self.spec is not None else ""

    def expected(self) -> str:
        """What a valid value is, in words (``a whole number >= 1``, ``one of 'a', 'b'``)."""
        text = self._element_text()
        if self.sequence:
            text = f"a sequence, each item {text}"
        return f"None or {text}" if self.optional else text

    def _element_text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(_plain(c)) for c in self.choices)
        spec = self.spec
        if self.kinds == (int,):
            base = "a whole number"
        elif self.kinds == (float,):
            base = "a finite number" if spec is None or spec.finite else "a number"
        elif self.kinds == (bool,):
            return "True or False"
        elif self.kinds == (str,):
            return "a string"
        elif self.kinds == (Path,):
            return "a path"
        elif self.kinds:
            return "a " + " or ".join(k.__name__ for k in self.kinds)
        else:
            return "a valid value"
        return base + _interval_text(spec)

    def check(self, value: Any, owner: str) -> None:
        """Raise :class:`InputError` unless ``value`` is allowed."""
        if value is None and self.optional:
            return
        if self.sequence:
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
                raise self._error(owner, value)
            for item in value:
                self._check_element(item, owner, whole=value)
        else:
            self._check_element(value, owner, whole=value)
        if self.spec is not None and self.spec.rule is not None:
            problem = self.spec.rule(value)
            if problem:
                raise InputError(f"{owner}: {self.name} = {describe_value(value)}: "
                                 f"expected {problem}")

    def _check_element(self, value: Any, owner: str, whole: Any) -> None:
        if self.choices is not None:
            if not any(_same_choice(value, c) for c in self.choices):
                raise self._error(owner, whole)
            return
        if not self.kinds:
            return
        if not _is_instance(value, self.kinds):
            raise self._error(owner, whole)
        if _is_number(value) and not _in_interval(float(value), self.spec):
            raise self._error(owner, whole)

    def _error(self, owner: str, value: Any) -> InputError:
        return InputError(f"{owner}: {self.name} = {describe_value(value)}: "
                          f"expected {self.expected()}")


# ---------------------------------------------------------------- reading the annotations
def _parse(name: str, annotation: Any, default: Any) -> Declared:
    spec = None
    if get_origin(annotation) is Annotated:
        annotation, *meta = get_args(annotation)
        specs = [m for m in meta if isinstance(m, Spec)]
        spec = specs[-1] if specs else None
        # Annotated[Annotated[...]] flattens, so one level is enough
    optional = False
    if _is_union(annotation):
        arms = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(arms) < len(get_args(annotation))
        annotation = arms[0] if len(arms) == 1 else typing.Union[tuple(arms)]  # noqa: UP007
    sequence = False
    if get_origin(annotation) in (tuple, list) or get_origin(annotation) in (Sequence,):
        items = [a for a in get_args(annotation) if a is not Ellipsis]
        if len(items) == 1:
            sequence, annotation = True, items[0]
    choices: tuple[Any, ...] | None = None
    kinds: tuple[type, ...] = ()
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = tuple(annotation)
    elif _is_union(annotation):
        members = get_args(annotation)
        kinds = tuple(a for a in members if isinstance(a, type)) if all(
            isinstance(a, type) for a in members) else ()
    elif isinstance(annotation, type):
        kinds = (annotation,)
    return Declared(name=name, kinds=kinds, choices=choices, optional=optional,
                    sequence=sequence, spec=spec, default=default)


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (typing.Union, types.UnionType)


_DECLARED: dict[type, dict[str, Declared]] = {}


def declarations(cls: type) -> dict[str, Declared]:
    """Every parameter of ``cls`` by name: a dataclass's fields, else its ``__init__``
    parameters (keyword and positional; ``self``, ``*args`` and ``**kwargs`` excluded).

    The annotations are resolved at run time, so the names they use must be imported at
    module level (not under ``TYPE_CHECKING``)."""
    if cls not in _DECLARED:
        _DECLARED[cls] = _read_declarations(cls)
    return _DECLARED[cls]


def _read_declarations(cls: type) -> dict[str, Declared]:
    # the class's own __init__ (the first in its MRO), read from the class, not an instance
    init = next(vars(c)["__init__"] for c in cls.__mro__ if "__init__" in vars(c))
    try:
        if dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls, include_extras=True)
            return {f.name: _parse(f.name, hints.get(f.name, Any), _field_default(f))
                    for f in dataclasses.fields(cls) if f.init}
        hints = typing.get_type_hints(init, include_extras=True)
    except NameError as exc:
        raise TypeError(f"{cls.__qualname__}: an annotation names something not importable "
                        f"at run time ({exc}); import it at module level") from exc
    out = {}
    for p in inspect.signature(init).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = _MISSING if p.default is inspect.Parameter.empty else p.default
        out[p.name] = _parse(p.name, hints.get(p.name, Any), default)
    return out


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


def undeclared(cls: type) -> list[str]:
    """The parameters of ``cls`` without a :class:`Spec` (no help, no range): the rule of
    ``tests/test_architecture.py`` is that a public config or estimator has none."""
    return [name for name, d in declarations(cls).items() if d.spec is None]


# ---------------------------------------------------------------- checking values
def check_params(obj: object, values: Mapping[str, Any] | None = None) -> None:
    """Check ``values`` (default: the object's attributes of the same names) against the
    declarations of ``type(obj)``; the first bad one raises :class:`InputError`."""
    owner = type(obj).__name__
    for name, declared in declarations(type(obj)).items():
        value = values[name] if values is not None else getattr(obj, name)
        declared.check(value, owner)


class Validated:
    """Base of a keyword-only dataclass of declared parameters, checked at construction.

    A subclass that defines its own ``__post_init__`` calls ``super().__post_init__()``
    first."""

    def __post_init__(self) -> None:
        check_params(self)


class ValidatedEstimator:
    """Mixin (before ``sklearn.base.BaseEstimator``) for an estimator whose ``__init__``
    parameters are declared: ``__init__`` stores them as passed (scikit-learn's rule) and
    ``fit`` calls ``self._validate_params()`` first. This replaces scikit-learn's
    ``_parameter_constraints`` check (scikit-learn's ``_fit_context`` calls it too)."""

    def _validate_params(self) -> None:
        get_params = getattr(self, "get_params", None)
        check_params(self, get_params(deep=False) if callable(get_params) else None)


def _is_instance(value: Any, kinds: tuple[type, ...]) -> bool:
    for kind in kinds:
        if kind is bool:
            if isinstance(value, bool | np.bool_):
                return True
        elif kind is int:
            if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
                return True
        elif kind is float:
            if isinstance(value, int | float | np.integer | np.floating) \
                    and not isinstance(value, bool | np.bool_):
                return True
        elif kind is Path:
            if isinstance(value, str | os.PathLike):
                return True
        elif isinstance(value, kind):
            return True
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_)


def _in_interval(x: float, spec: Spec | None) -> bool:
    if spec is None:
        return math.isfinite(x)
    if spec.finite and not math.isfinite(x):
        return False
    if math.isnan(x):
        return False
    return not ((spec.ge is not None and x < spec.ge) or (spec.gt is not None and x <= spec.gt)
                or (spec.le is not None and x > spec.le) or (spec.lt is not None and x >= spec.lt))


def _interval_text(spec: Spec | None) -> str:
    if spec is None:
        return ""
    parts = [f"{op} {_num(v)}" for op, v in ((">=", spec.ge), (">", spec.gt),
                                              ("<=", spec.le), ("<", spec.lt)) if v is not None]
    return (" " + " and ".join(parts)) if parts else ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _plain(choice: Any) -> Any:
    return choice.value if isinstance(choice, enum.Enum) else choice


def _same_choice(value: Any, choice: Any) -> bool:
    if isinstance(value, bool) != isinstance(choice, bool):
        return False
    try:
        return bool(value == choice or value == _plain(choice))
    except Exception:  # noqa: BLE001 - an object whose == fails is not one of the choices
        return False


# ---------------------------------------------------------------- the command line
def comma_list(text: str | None) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: how a command line writes a ``tuple[...]``
    parameter (empty entries skipped)."""
    return () if text is None else tuple(p.strip() for p in str(text).split(",") if p.strip())


def option(owner: type, name: str, *flags: str, default: Any = _MISSING,
           help: str | None = None, **typer_kwargs: Any) -> Any:
    """The Typer option of parameter ``name`` of ``owner``, derived from its declaration.

    Use it as the default of a command's parameter::

        def fit(depth: int = option(FitConfig, "depth")) -> None: ...

    The option's default is the class's (unless ``default`` is given), its help is the
    declared help followed by the choices or the range, and a callback refuses a value the
    declaration refuses before anything runs, as the one line every option error is:
    ``--flag = value: expected ...`` (an :class:`InputError`: exit 2). A number or a choice
    is parsed here from the text as given (not by typer, whose own messages differ), so a
    value that is not a number at all is the same line. A ``tuple[X, ...]`` parameter is
    written comma-separated on the command line: annotate the command's parameter ``str``
    and pass :func:`comma_list` of it to the class.
    """
    import typer

    declared = declarations(owner).get(name)
    if declared is None:
        raise TypeError(f"{owner.__qualname__} declares no parameter {name!r}")
    value = declared.default if default is _MISSING else default
    if value is _MISSING:
        value = ...
    elif declared.sequence and isinstance(value, tuple | list):
        value = ",".join(str(_plain(v)) for v in value) or None
    elif isinstance(value, enum.Enum):
        value = value.value
    text = help if help is not None else declared.help
    if declared.sequence or (declared.choices is None
                             and declared.kinds not in ((bool,), (str,), (Path,), ())):
        text = _with_expected(text, _help_expected(declared))
    if not declared.sequence and (declared.choices is not None
                                  or declared.kinds in ((int,), (float,))):
        typer_kwargs.setdefault("parser", _as_given)  # parsed and checked by the callback

    def _check(ctx: typer.Context, param: typer.CallbackParam, given: Any) -> Any:
        if given is None or ctx.resilient_parsing:
            return given
        parsed = (tuple(_from_text(declared, t) for t in comma_list(given))
                  if declared.sequence else _from_cli(declared, given))
        try:
            declared.check(parsed, owner.__name__)
        except InputError as err:
            flag = param.opts[0] if param.opts else "--" + name.replace("_", "-")
            shown = parsed if _is_number(parsed) else given  # `--n = 0`, `--n = 'x'`
            raise InputError(f"{flag} = {describe_value(shown)}: expected "
                             f"{_cli_expected(declared, err)}") from None
        return given if declared.sequence else parsed

    # typer tells a callback's arguments apart by their annotations, which this module's
    # ``from __future__ import annotations`` would leave as unresolvable strings
    _check.__annotations__ = {"ctx": typer.Context, "param": typer.CallbackParam,
                              "given": Any, "return": Any}
    return typer.Option(value, *flags, help=text, callback=_check, **typer_kwargs)


@dataclass(frozen=True, kw_only=True)
class OptionGroup:
    """Several parameters of ``owner`` on a command line, passed to the command as one
    ``owner``: see :func:`with_groups`.

    ``names``: which parameters (default: all of them, in declaration order); ``flags``:
    a flag other than ``--name-with-dashes`` (``{"data_file": "--data"}``); ``help``: a help
    text other than the declared one, for this command.
    """

    owner: type
    names: tuple[str, ...] | None = None
    flags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    help: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def selected(self) -> tuple[str, ...]:
        declared = declarations(self.owner)
        names = tuple(declared) if self.names is None else self.names
        unknown = [n for n in (*names, *self.flags, *self.help) if n not in declared]
        if unknown:
            raise TypeError(f"{self.owner.__qualname__} declares no parameter {unknown[0]!r}")
        return names

    def parameters(self) -> list[inspect.Parameter]:
        """One keyword-only command parameter per selected name, its default the option."""
        out = []
        for name in self.selected():
            flags = (self.flags[name],) if name in self.flags else ()
            out.append(inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY,
                annotation=_typer_annotation(self.owner, declarations(self.owner)[name]),
                default=option(self.owner, name, *flags, help=self.help.get(name))))
        return out

    def build(self, values: Mapping[str, Any]) -> Any:
        """The ``owner`` of the parsed values: a comma-separated text split and parsed (an
        option left unset is the empty tuple, or ``None`` where the field is optional)."""
        declared = declarations(self.owner)

        def value_of(name: str, value: Any) -> Any:
            d = declared[name]
            if d.sequence and (isinstance(value, str) or (value is None and not d.optional)):
                return tuple(_from_text(d, t) for t in comma_list(value))
            return value

        return self.owner(**{name: value_of(name, v) for name, v in values.items()})


def _typer_annotation(owner: type, declared: Declared) -> Any:
    """The type Typer is told for a grouped option (the declaration's; a sequence is the
    comma-separated ``str``); a kind Typer cannot parse is a programming error."""
    if declared.sequence:
        return str | None
    if declared.choices is not None:
        first = declared.choices[0]
        base: Any = type(first) if isinstance(first, enum.Enum) else Literal[declared.choices]
    elif len(declared.kinds) == 1 and declared.kinds[0] in (int, float, bool, str, Path):
        base = declared.kinds[0]
    else:
        raise TypeError(f"{owner.__qualname__}.{declared.name}: no command-line type for "
                        f"{declared.kinds or 'this annotation'}; leave it out of the group "
                        "(names=...) and give it its own option")
    return base | None if declared.optional else base


class _FromOptions:
    """The default of a command's group parameter (:data:`FROM_OPTIONS`)."""

    def __repr__(self) -> str:
        return "FROM_OPTIONS"


FROM_OPTIONS: Any = _FromOptions()
"""Default of a command parameter that :func:`with_groups` replaces by its group's options
(nothing is built when the command is defined)."""


def with_groups(**groups: OptionGroup) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Compose option groups into a command instead of repeating their options.

    The command declares one parameter per group, annotated with the group's class; the
    command line shows the group's options in its place, and the command is called with the
    one object built from them::

        @app.command()
        @with_groups(source=OptionGroup(owner=DataSource, flags={"data_file": "--data"}))
        def kernel(out: Path, source: DataSource = FROM_OPTIONS) -> None: ...

    The object is built (and so checked) by its class from the values as parsed.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        missing = set(groups) - set(signature.parameters)
        if missing:
            raise TypeError(f"{command.__qualname__} has no parameter {sorted(missing)[0]!r}")
        parameters: list[inspect.Parameter] = []
        members: dict[str, tuple[str, ...]] = {}
        for p in signature.parameters.values():
            if p.name in groups:
                members[p.name] = groups[p.name].selected()
                parameters += groups[p.name].parameters()
            else:
                parameters.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise TypeError(f"{command.__qualname__}: option {twice[0]!r} is in two groups")

        def run(**values: Any) -> Any:
            for group, fields in members.items():
                values[group] = groups[group].build({n: values.pop(n) for n in fields})
            return command(**values)

        run.__name__, run.__qualname__ = command.__name__, command.__qualname__
        run.__doc__, run.__module__ = command.__doc__, command.__module__
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters} | {
            "return": signature.return_annotation}
        return run

    return decorate


def _as_given(value: Any) -> Any:
    """The option's parser: the text as the user wrote it (the callback parses and checks)."""
    return value


def _from_cli(declared: Declared, given: Any) -> Any:
    """A command-line value as the declaration wants it: a number parsed, a choice as the
    declared member (``StrEnum`` or ``Literal`` value); a text that is neither stays text,
    and the check names it. A value that is not text (the option's default) is kept."""
    value = _from_text(declared, given) if isinstance(given, str) else given
    if declared.kinds == (float,) and _is_number(value):
        return float(value)  # as typer gave it: `--temperature 0` is 0.0 in run.json too
    if declared.choices is not None:
        return next((c for c in declared.choices if _same_choice(value, c)), value)
    return value


def _with_expected(text: str, expected: str) -> str:
    """``"Hidden layers."`` -> ``"Hidden layers (a whole number >= 1)."`` (round brackets: a
    square one would be read as rich markup)."""
    text = text.rstrip()
    if text.endswith("."):
        return f"{text[:-1]} ({expected})."
    return f"{text} ({expected})".strip()


def _cli_expected(declared: Declared, err: InputError) -> str:
    """What the command line says was expected: the declaration's rule's own words when the
    rule refused the value, else the type and range as the option's help writes them."""
    said = str(err).partition(": expected ")[2]
    rule = declared.spec.rule if declared.spec is not None else None
    return said if rule is not None and said and said != declared.expected() \
        else _help_expected(declared)


def _help_expected(declared: Declared) -> str:
    text = declared.expected().removeprefix("None or ")
    if declared.sequence:  # written comma-separated on the command line
        text = text.replace("a sequence, each item ", "comma-separated, each ", 1)
    return text


def _from_text(declared: Declared, text: str) -> Any:
    """One comma-separated item as the element type wants it (numbers parsed; a text that
    is not a number stays text, and the check names it)."""
    numeric = declared.kinds in ((int,), (float,)) or (
        declared.choices is not None and all(_is_number(_plain(c)) for c in declared.choices))
    if not numeric:
        return text
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text
