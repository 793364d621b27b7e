"""Every DINO-part parameter declared once: its type (``Literal`` choices), range and help.

The estimators annotate their ``__init__`` parameters with these (checked at ``fit``), the
command's configs (``dino/config.py``) annotate their fields with them (checked when built), and
``dino/cli.py`` derives each option's choices, range and help from the same declaration through
:func:`transferscope.core.params.option`. Light on purpose (no numpy, torch or scikit-learn),
so the command line can read it without paying for them.

An alias is ``Annotated[type, Spec]``; a setting that may be left to a preset is written
``Annotated[type | None, SPEC]`` with the same :class:`~transferscope.core.params.Spec`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from transferscope.core.params import Spec

__all__ = [
    "BStd", "BatchSize", "Calibrate", "CacheGib", "CgTol", "CvFolds", "Depth", "Dtype",
    "ExactMax", "Factor", "Hidden", "Kernel", "LearningRate", "MaxTrain", "Mean", "MinTrainLabels",
    "NBase", "NInducing", "NNeighbours", "NSteps", "Objective", "Posterior", "RandomState",
    "RankTol", "Transfer", "ValEvery", "Verbose", "WStd", "WarmStart",
]

# ---------------------------------------------------------------- choices
KernelName = Literal["ntk", "nngp"]
FactorForm = Literal["cosine", "elu"]
MeanForm = Literal["none", "constant", "linear", "domain-linear"]
ObjectiveName = Literal["joint", "conditional"]
PosteriorName = Literal["auto", "exact", "nystrom", "cg"]
DtypeName = Literal["float32", "float64"]
MEANS: tuple[str, ...] = get_args(MeanForm)
OBJECTIVES: tuple[str, ...] = get_args(ObjectiveName)
POSTERIORS: tuple[str, ...] = get_args(PosteriorName)

# More Adam steps or layers than these is a typo, not a plan (hours on a CPU); the same bounds
# hold for a model file's settings (dino/model_file.py).
MAX_STEPS = 1_000_000
MAX_DEPTH = 100
MAX_SEED = 2**63 - 1


def _folds(value: Any) -> str | None:
    return "0 (no check) or a whole number >= 2" if value == 1 else None


def _seed(value: Any) -> str | None:
    return "a whole number from 0 to 2**63 - 1" if value > MAX_SEED else None


# ---------------------------------------------------------------- one Spec per parameter
KERNEL = Spec(help="'ntk' (DINO-TRAIN) or 'nngp' (DINO-INIT).")
DEPTH = Spec(ge=1, le=MAX_DEPTH, help="Hidden layers of the ReLU network.")
W_STD = Spec(gt=0, help="Weight std of the network.")
B_STD = Spec(ge=0, help="Bias std of the network.")
N_BASE = Spec(ge=1, help="Base samples per domain.")
HIDDEN = Spec(ge=1, help="Width of the hidden layers.")
MEAN = Spec(help="Mean per domain: 'linear' (intercept per domain + shared slope), "
                 "'domain-linear', 'constant' or 'none'.")
OBJECTIVE = Spec(help="'joint' (-log p(y_S, y_T)) or 'conditional' (-log p(y_T | y_S)).")
N_STEPS = Spec(ge=0, le=MAX_STEPS,
               help="Most Adam steps (how many are kept: cross-validation; 0: the warm start).")
CV_FOLDS = Spec(ge=0, rule=_folds, help="Folds choosing the number of Adam steps (0: no check).")
MIN_TRAIN_LABELS = Spec(ge=0, help="Fewest labelled target rows for which Adam steps are tried.")
VAL_EVERY = Spec(ge=1, help="Adam steps between two cross-validation scores.")
BATCH_SIZE = Spec(ge=1, help="Source points per step.")
LEARNING_RATE = Spec(gt=0, help="Adam learning rate.")
FACTOR = Spec(help="'cosine' or 'elu' (the authors' signed weights, unnormalised).")
TRANSFER = Spec(help="Learn a cross-domain factor lambda.")
CALIBRATE = Spec(help="Widen the intervals by the conformal scale of the labelled target rows.")
POSTERIOR = Spec(help="'auto' (exact up to exact_max training rows, Nystrom above), 'exact', "
                      "'nystrom' or 'cg'.")
EXACT_MAX = Spec(ge=0, help="Most training rows of the exact posterior under 'auto'.")
N_INDUCING = Spec(ge=1, help="Inducing points of the Nystrom posterior.")
CG_TOL = Spec(gt=0, lt=1, help="Relative tolerance of the conjugate gradients.")
CACHE_GIB = Spec(ge=0, help="GiB of kernel the conjugate gradients may cache.")
N_NEIGHBOURS = Spec(ge=1, help="Most correlated points behind the CG posterior's variance.")
WARM_START = Spec(help="Fit the hyper-parameters by L-BFGS at uniform weights first.")
RANK_TOL = Spec(ge=0, lt=1, help="Relative eigenvalue below which a direction is dropped.")
RANDOM_STATE = Spec(ge=0, rule=_seed, help="Random seed.")
VERBOSE = Spec(help="Draw progress bars.")
MAX_TRAIN = Spec(ge=1, help="Most training rows (source rows subsampled beyond).")
DTYPE = Spec(help="Floating-point precision of the authors' code.")
ALPHAS = Spec(gt=0, help="Ridge penalties searched by leave-one-out.")
EPOCHS = Spec(ge=0, help="Passes over the source rows.")
FINETUNE_STEPS = Spec(ge=0, help="Fine-tuning steps on the labelled target rows.")
FINETUNE_LR = Spec(gt=0, help="Fine-tuning learning rate.")

# ---------------------------------------------------------------- the aliases the estimators use
Kernel = Annotated[KernelName, KERNEL]
Depth = Annotated[int, DEPTH]
WStd = Annotated[float, W_STD]
BStd = Annotated[float, B_STD]
NBase = Annotated[int, N_BASE]
Hidden = Annotated[int, HIDDEN]
Mean = Annotated[MeanForm, MEAN]
Objective = Annotated[ObjectiveName, OBJECTIVE]
NSteps = Annotated[int, N_STEPS]
CvFolds = Annotated[int, CV_FOLDS]
MinTrainLabels = Annotated[int, MIN_TRAIN_LABELS]
ValEvery = Annotated[int, VAL_EVERY]
BatchSize = Annotated[int, BATCH_SIZE]
LearningRate = Annotated[float, LEARNING_RATE]
Factor = Annotated[FactorForm, FACTOR]
Transfer = Annotated[bool, TRANSFER]
Calibrate = Annotated[bool, CALIBRATE]
Posterior = Annotated[PosteriorName, POSTERIOR]
ExactMax = Annotated[int, EXACT_MAX]
NInducing = Annotated[int, N_INDUCING]
CgTol = Annotated[float, CG_TOL]
CacheGib = Annotated[float, CACHE_GIB]
NNeighbours = Annotated[int, N_NEIGHBOURS]
WarmStart = Annotated[bool, WARM_START]
RankTol = Annotated[float, RANK_TOL]
RandomState = Annotated[int, RANDOM_STATE]
Verbose = Annotated[bool, VERBOSE]
MaxTrain = Annotated[int, MAX_TRAIN]
Dtype = Annotated[DtypeName, DTYPE]
Alphas = Annotated[tuple[float, ...], ALPHAS]
Epochs = Annotated[int, EPOCHS]
FinetuneSteps = Annotated[int, FINETUNE_STEPS]
FinetuneLr = Annotated[float, FINETUNE_LR]
