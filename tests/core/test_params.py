"""core.params: one declaration per parameter, read by a dataclass (checked when built), a
scikit-learn estimator (checked at fit) and a Typer option (checked when parsed)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pytest
import typer
from sklearn.base import BaseEstimator, RegressorMixin, clone
from typer.testing import CliRunner

from transferscope.core.errors import InputError
from transferscope.core.params import (
    FROM_OPTIONS,
    OptionGroup,
    Spec,
    Validated,
    ValidatedEstimator,
    comma_list,
    declarations,
    option,
    undeclared,
    with_groups,
)


class Kernel(StrEnum):
    NTK = "ntk"
    NNGP = "nngp"


Depth = Annotated[int, Spec(ge=1, help="Hidden layers.")]


def _even(value: int) -> str | None:
    return None if value % 2 == 0 else "an even number"


@dataclass(kw_only=True, frozen=True)
class Config(Validated):
    depth: Depth = 3
    lr: Annotated[float, Spec(gt=0, le=1, help="Step size.")] = 0.1
    kernel: Annotated[Kernel, Spec(help="Kernel.")] = Kernel.NTK
    loss: Annotated[Literal["mse", "half-mse"], Spec(help="Loss.")] = "half-mse"
    sizes: Annotated[tuple[int, ...], Spec(ge=2, help="Sample sizes.")] = (4, 8)
    out: Annotated[Path | None, Spec(help="Output folder.")] = None
    pairs: Annotated[int, Spec(ge=0, rule=_even, help="Pairs.")] = 2
    patience: Annotated[float, Spec(gt=0, finite=False, help="Steps; inf: never stop.")
                        ] = math.inf
    verbose: Annotated[bool, Spec(help="Talk.")] = False


class Regressor(ValidatedEstimator, RegressorMixin, BaseEstimator):
    """A minimal estimator: parameters stored as passed, checked at fit."""

    def __init__(self, *, depth: Depth = 3,
                 alpha: Annotated[float, Spec(ge=0, help="Ridge.")] = 1.0) -> None:
        self.depth = depth
        self.alpha = alpha

    def fit(self, X, y):
        self._validate_params()
        X, y = np.asarray(X, float), np.asarray(y, float)
        self.coef_ = np.linalg.solve(X.T @ X + self.alpha * np.eye(X.shape[1]), X.T @ y)
        return self

    def predict(self, X):
        return np.asarray(X, float) @ self.coef_


def test_declarations_read_type_choices_range_help_and_default():
    d = declarations(Config)
    assert list(d) == ["depth", "lr", "kernel", "loss", "sizes", "out", "pairs", "patience",
                       "verbose"]
    assert d["depth"].kinds == (int,) and d["depth"].spec.ge == 1 and d["depth"].default == 3
    assert d["kernel"].choices == (Kernel.NTK, Kernel.NNGP)
    assert d["loss"].choices == ("mse", "half-mse")
    assert d["sizes"].sequence and d["sizes"].kinds == (int,)
    assert d["out"].optional and d["out"].kinds == (Path,)
    assert d["lr"].help == "Step size."
    assert undeclared(Config) == []


def test_valid_values_pass_as_given():
    c = Config(depth=np.int64(2), lr=1, kernel="nngp", sizes=[3, 5], out="o", pairs=0)
    assert c.kernel == Kernel.NNGP and c.sizes == [3, 5] and c.patience == math.inf


@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 0}, "Config: depth = 0: expected a whole number >= 1"),
    ({"depth": 2.0}, "depth = 2.0: expected a whole number >= 1"),
    ({"depth": True}, "depth = True: expected a whole number"),
    ({"lr": 0.0}, "lr = 0.0: expected a finite number > 0 and <= 1"),
    ({"lr": 1.5}, "lr = 1.5: expected a finite number > 0 and <= 1"),
    ({"lr": math.nan}, "lr = nan: expected a finite number"),
    ({"lr": "0.1"}, "lr = '0.1': expected a finite number"),
    ({"kernel": "rbf"}, "kernel = 'rbf': expected one of 'ntk', 'nngp'"),
    ({"loss": "l1"}, "loss = 'l1': expected one of 'mse', 'half-mse'"),
    ({"sizes": (4, 1)}, "sizes = (4, 1): expected a sequence, each item a whole number >= 2"),
    ({"sizes": "48"}, "sizes = '48': expected a sequence"),
    ({"out": 3}, "out = 3: expected None or a path"),
    ({"pairs": 3}, "pairs = 3: expected an even number"),
    ({"patience": -math.inf}, "patience = -inf: expected a number > 0"),
    ({"verbose": 1}, "verbose = 1: expected True or False"),
])
def test_a_bad_value_is_one_value_error_naming_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        Config(**kwargs)
    assert isinstance(caught.value, InputError) and str(caught.value).startswith("Config: ")


def test_the_dataclass_takes_keywords_only():
    with pytest.raises(TypeError):
        Config(3)  # type: ignore[misc]


def test_the_estimator_checks_at_fit_not_at_construction():
    bad = Regressor(depth=0)  # scikit-learn's rule: __init__ stores, fit checks
    assert bad.get_params() == {"depth": 0, "alpha": 1.0}
    with pytest.raises(ValueError, match="Regressor: depth = 0: expected a whole number >= 1"):
        bad.fit([[1.0]], [1.0])
    with pytest.raises(ValueError, match="alpha = -1"):
        clone(Regressor(alpha=-1)).fit([[1.0]], [1.0])


def test_the_estimator_fits_like_ridge_regression():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([1.0, 2.0, 3.0])
    model = Regressor(alpha=0.5).fit(X, y)
    expected = np.linalg.solve(X.T @ X + 0.5 * np.eye(2), X.T @ y)  # the closed form
    np.testing.assert_allclose(model.coef_, expected)
    assert declarations(Regressor)["alpha"].spec.ge == 0


def test_scikit_learn_accepts_the_estimator():
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_parameters_default_constructible,
    )

    check_parameters_default_constructible("Regressor", Regressor())
    check_get_params_invariance("Regressor", Regressor())
    assert clone(Regressor(depth=4)).get_params()["depth"] == 4


def test_comma_list_skips_empty_entries():
    assert comma_list(" a, b,,c ,") == ("a", "b", "c")
    assert comma_list("") == () and comma_list(None) == ()


def _app() -> typer.Typer:
    app = typer.Typer()
    seen: list[Config] = []

    @app.command()
    def main(depth: int = option(Config, "depth"),
             lr: float = option(Config, "lr"),
             kernel: Kernel = option(Config, "kernel"),
             sizes: str = option(Config, "sizes"),
             out: Path | None = option(Config, "out", "--out"),
             verbose: bool = option(Config, "verbose")) -> None:
        seen.append(Config(depth=depth, lr=lr, kernel=kernel, out=out, verbose=verbose,
                           sizes=tuple(int(s) for s in comma_list(sizes))))
        print(repr(seen[-1]))

    return app


def test_the_option_takes_default_help_and_range_from_the_declaration():
    result = CliRunner().invoke(_app(), ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Hidden layers (a whole number >= 1)." in text
    assert "Step size (a finite number > 0 and <= 1)." in text
    assert "Sample sizes (comma-separated, each a whole number >= 2)." in text
    assert "ntk|nngp" in text and "[default: 3]" in text and "[default: 4,8]" in text


def test_the_option_parses_numbers_and_choices_as_the_declaration_types_them():
    ok = CliRunner().invoke(_app(), ["--depth", "2", "--lr", "1", "--sizes", "3,5", "--kernel",
                                     "nngp"])
    assert ok.exit_code == 0, ok.output
    # lr is a float even when written as a whole number; the choice is the enum member
    assert "depth=2, lr=1.0, kernel=<Kernel.NNGP: 'nngp'>" in ok.output
    assert "sizes=(3, 5)" in ok.output


@pytest.mark.parametrize("argv, line", [
    (["--depth", "0"], "--depth = 0: expected a whole number >= 1"),
    (["--depth", "2.5"], "--depth = 2.5: expected a whole number >= 1"),
    (["--depth", "two"], "--depth = 'two': expected a whole number >= 1"),
    (["--lr", "0"], "--lr = 0.0: expected a finite number > 0 and <= 1"),
    (["--lr", "nan"], "--lr = nan: expected a finite number > 0 and <= 1"),
    (["--sizes", "3,x"], "--sizes = '3,x': expected comma-separated, each a whole number >= 2"),
    (["--kernel", "rbf"], "--kernel = 'rbf': expected one of 'ntk', 'nngp'"),
])
def test_the_option_refuses_what_the_declaration_refuses_in_one_line(argv, line):
    """The option's own line, ``--flag = value: expected ...``: an InputError, which the
    entry point prints as one line and exits 2 with (typer's "Invalid value for" never)."""
    bad = CliRunner().invoke(_app(), argv)
    assert isinstance(bad.exception, InputError), bad.output
    assert str(bad.exception) == line and InputError.exit_code == 2


def test_an_unknown_parameter_name_is_a_programming_error():
    with pytest.raises(TypeError, match="declares no parameter 'depht'"):
        option(Config, "depht")


@pytest.mark.parametrize("argv, line", [
    (["bias", "run", "--out", "o", "--samples", "0"],
     "error: --samples = 0: expected a whole number >= 1"),
    (["bias", "run", "--out", "o", "--adjust", "bonferroni"],
     "error: --adjust = 'bonferroni': expected one of 'holm', 'bh'"),
    (["dino", "fit", "t.csv", "--features", "x", "--target", "y", "--domain", "d",
      "--target-domain", "B", "--impute", "mode"],
     "error: --impute = 'mode': expected one of 'mean', 'median', 'drop'"),
    (["ntk", "stop", ".", "--batch-size", "many"],
     "error: --batch-size = 'many': expected a whole number >= 1"),
    (["ntk", "stop", ".", "--loss", "l1"],
     "error: --loss = 'l1': expected one of 'half-mse', 'mse'"),
])
def test_each_part_says_a_bad_option_value_in_one_line(argv, line, tmp_path, monkeypatch,
                                                        capsys):
    """The real entry point: stderr is exactly the option's line, exit 2, nothing written."""
    from transferscope.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["transferscope", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == line + "\n"
    assert not any(tmp_path.iterdir())


def _grouped_app(seen: list) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @with_groups(config=OptionGroup(owner=Config, names=("depth", "kernel", "sizes", "out"),
                                    flags={"out": "--to"}, help={"depth": "Layers here."}))
    def main(name: str = typer.Option("x"), config: Config = FROM_OPTIONS) -> None:
        seen.append((name, config))

    return app


def test_an_option_group_is_the_declared_options_built_into_one_object():
    seen: list = []
    ok = CliRunner().invoke(_grouped_app(seen), ["--name", "y", "--depth", "2", "--kernel",
                                                 "nngp", "--sizes", "3,5", "--to", "o"])
    assert ok.exit_code == 0, ok.output
    assert seen == [("y", Config(depth=2, kernel=Kernel.NNGP, sizes=(3, 5), out=Path("o")))]
    CliRunner().invoke(_grouped_app(seen), [])
    assert seen[-1] == ("x", Config())  # every default the class's own
    text = " ".join(CliRunner().invoke(_grouped_app(seen), ["--help"], env={
        "COLUMNS": "200", "NO_COLOR": "1"}).output.split())
    assert "Layers here (a whole number >= 1)." in text and "--to" in text
    assert "--lr" not in text and "--config" not in text  # only the names given


def test_a_bad_value_in_a_group_is_the_option_s_one_line():
    bad = CliRunner().invoke(_grouped_app([]), ["--sizes", "3,1"])
    assert isinstance(bad.exception, InputError), bad.output
    assert str(bad.exception) == "--sizes = '3,1': expected comma-separated, each a whole " \
                                 "number >= 2"


def test_a_group_naming_what_its_class_or_the_command_lacks_is_a_programming_error():
    with pytest.raises(TypeError, match="declares no parameter 'dpth'"):
        with_groups(config=OptionGroup(owner=Config, names=("dpth",)))(lambda config: None)
    with pytest.raises(TypeError, match="has no parameter 'config'"):
        with_groups(config=OptionGroup(owner=Config))(lambda other: None)
    with pytest.raises(TypeError, match="option 'depth' is in two groups"):
        with_groups(a=OptionGroup(owner=Config), b=OptionGroup(owner=Config))(
            lambda a, b: None)


@dataclass(kw_only=True, frozen=True)
class Listing(Validated):
    names: Annotated[tuple[str, ...], Spec(help="Names.")] = ()
    either: Annotated[int | str, Spec(help="A number or a word.")] = 1


def test_a_group_sequence_left_unset_is_the_empty_tuple():
    seen: list = []
    app = typer.Typer()

    @app.command()
    @with_groups(listing=OptionGroup(owner=Listing, names=("names",)))
    def main(listing: Listing = FROM_OPTIONS) -> None:
        seen.append(listing)

    assert CliRunner().invoke(app, []).exit_code == 0
    assert CliRunner().invoke(app, ["--names", "a,b"]).exit_code == 0
    assert seen == [Listing(), Listing(names=("a", "b"))]


def test_an_estimator_s_init_parameters_form_a_group():
    seen: list = []
    app = typer.Typer()

    @app.command()
    @with_groups(model=OptionGroup(owner=Regressor))
    def main(model: Regressor = FROM_OPTIONS) -> None:
        seen.append(model.get_params())

    ok = CliRunner().invoke(app, ["--depth", "4", "--alpha", "0.5"])
    assert ok.exit_code == 0, ok.output
    assert seen == [{"depth": 4, "alpha": 0.5}]


def test_a_field_the_command_line_cannot_type_is_refused_by_name():
    with pytest.raises(TypeError, match=r"Listing\.either: no command-line type"):
        with_groups(listing=OptionGroup(owner=Listing))(lambda listing: None)
