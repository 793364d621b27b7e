"""A fitted DINO table model and its file: safetensors (data only; loading runs no code), every
setting bounded before use, one error line for a damaged or foreign file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from transferscope.core.bounded import loads_json, read_capped
from transferscope.core.checks import check_int, check_number
from transferscope.core.errors import InputError, input_error
from transferscope.core.io import atomic_write_bytes
from transferscope.dino.authors import AuthorsDINO
from transferscope.dino.estimator import DINORegressor
from transferscope.dino.io import FeatureEncoder

ESTIMATORS: dict[str, type[DINORegressor] | type[AuthorsDINO]] = {
    "DINORegressor": DINORegressor, "AuthorsDINO": AuthorsDINO}
MODEL_FORMAT = "transferscope-dino-model"
MODEL_VERSION = 4  # 1-2: pickles (never read: unpickling a file can run code); 3: before #30
MODEL_FILE_CAP = 2**30  # bytes: 1 GiB holds 60 million training values, far past any CPU fit
# Every number a model file's settings hold, bounded before use (a depth of 1e6 would hang
# predict): whole numbers (low, high) and real numbers (low, high).
INT_SETTINGS = {"depth": (1, 100), "n_base": (1, 10**7), "hidden": (1, 10**5),
                "n_steps": (0, 10**6), "batch_size": (1, 10**9), "val_every": (1, 10**6),
                "cv_folds": (0, 10**6), "min_train_labels": (0, 10**9),
                "exact_max": (0, 10**8), "n_inducing": (1, 10**8),
                "n_neighbours": (1, 10**8), "random_state": (0, 2**63 - 1),
                "n_features_in": (1, 10**6), "n_outputs": (1, 10**4), "n_source": (0, 10**9),
                "selected_steps": (0, 10**6), "scaler_samples": (1, 10**12)}
FLOAT_SETTINGS = {"w_std": (0.0, 1e6), "b_std": (0.0, 1e6), "learning_rate": (0.0, 1e6),
                  "calibration_scale": (0.0, 1e6), "cg_tol": (0.0, 1.0),
                  "cache_gib": (0.0, 1e6), "rank_tol": (0.0, 1.0)}


@dataclass(kw_only=True)
class TableModel:
    """A fitted scikit-learn pipeline (scaler + DINO) and the table columns it was fitted on."""

    pipeline: Pipeline
    features: list[str]
    target: str
    encoder: FeatureEncoder


def save_model(path: str | Path, model: TableModel) -> Path:
    """Write the model atomically as a safetensors file: named float64 arrays plus JSON
    settings in its header (``MODEL_FORMAT``, ``MODEL_VERSION``). Data only: reading it runs
    no code, unlike a pickle (issue #20)."""
    scaler, dino = model.pipeline[0], model.pipeline[-1]
    dino_settings, arrays = dino.fitted_state()
    settings = {"features": model.features, "target": model.target,
                "encoder": asdict(model.encoder), "scaler": scaler.get_params(),
                "scaler_samples": int(np.max(scaler.n_samples_seen_)), "dino": dino_settings}
    arrays = {f"dino.{k}": v for k, v in arrays.items()}
    arrays |= {f"scaler.{k}": np.asarray(getattr(scaler, f"{k}_"), dtype=np.float64)
               for k in ("mean", "var", "scale")}
    metadata = {"format": MODEL_FORMAT, "version": str(MODEL_VERSION),
                "settings": json.dumps(settings)}
    atomic_write_bytes(path, safetensors.numpy.save(arrays, metadata=metadata))
    return Path(path)


def load_model(path: str | Path) -> TableModel:
    """A model written by :func:`save_model`. Anything else (a pickle, which is never
    unpickled; a damaged or truncated file; another version) is one clear InputError."""
    path = Path(path)
    expected = f"a {MODEL_FORMAT} version {MODEL_VERSION} file written by `transferscope dino fit`"
    try:
        raw = read_capped(path, MODEL_FILE_CAP, "a DINO model file")  # 2 GB is not read whole
    except OSError as err:
        raise input_error(str(path), "model file", err.strerror or str(err), expected) from err
    metadata = _safetensors_metadata(raw, str(path), expected)
    if metadata.get("format") != MODEL_FORMAT:
        raise input_error(str(path), "model format", metadata.get("format", "none"), expected)
    version = metadata.get("version", "none")
    if not isinstance(version, str):
        raise input_error(str(path), "model version", version,
                          f"the text '{MODEL_VERSION}' (a {type(version).__name__} is not how "
                          "`dino fit` writes it)")
    if version != str(MODEL_VERSION):
        raise input_error(str(path), "model version", version,
                          f"{MODEL_VERSION} (refit the model with this version's `dino fit`)")
    try:
        arrays = safetensors.numpy.load(raw)
        wrong = next((k for k, v in arrays.items() if v.dtype != np.float64), None)
        if wrong is not None:  # bytes of another type read as floats predict nonsense
            raise input_error(str(path), f"model tensor '{wrong}' dtype",
                              str(arrays[wrong].dtype), "float64 (F64), as `dino fit` writes")
        settings = loads_json(metadata["settings"], f"{path}: header settings",
                              "the settings `dino fit` writes")
        _check_settings(settings, str(path))
        return _table_model(settings, arrays)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError,
            RecursionError, SafetensorError) as err:
        detail = f"{type(err).__name__}: {err}".splitlines()[0][:100]
        raise input_error(str(path), "model contents", detail, expected) from err


def _safetensors_metadata(raw: bytes, path: str, expected: str) -> dict[str, str]:
    """The JSON header's ``__metadata__``, read without trusting the file; a pickle is named."""
    size = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
    if not 2 <= size <= len(raw) - 8:
        if raw[:1] == b"\x80" and raw[-1:] == b".":  # pickle protocol >= 2: PROTO ... STOP
            raise input_error(path, "model file", "a Python pickle (never loaded: unpickling "
                              "can run code)", expected)
        if len(raw) < 8:
            raise input_error(path, "model file", f"{len(raw)} bytes", expected)
        raise input_error(path, "model header length", size,
                          f"at most the {len(raw) - 8} bytes after it (truncated, or {expected})")
    try:
        header = json.loads(raw[8:8 + size].decode("utf-8"))
        metadata = header["__metadata__"]
        end = 8 + size + max((int(entry["data_offsets"][1]) for key, entry in header.items()
                              if key != "__metadata__"), default=0)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError,
            RecursionError) as err:
        raise input_error(path, "model header", type(err).__name__, expected) from err
    if not isinstance(metadata, dict):
        raise input_error(path, "model header", type(metadata).__name__, expected)
    if end != len(raw):
        raise input_error(path, "model file length", f"{len(raw)} bytes",
                          f"{end} as its header says (truncated or damaged file)")
    return metadata


def _check_settings(settings: dict, path: str) -> None:
    """Every number in a model file's settings within its bound (``INT_SETTINGS``,
    ``FLOAT_SETTINGS``), checked before any of them sizes a network or a loop."""
    if not isinstance(settings, dict) or not isinstance(settings.get("dino"), dict):
        raise ValueError("settings without a 'dino' object")
    dino = settings["dino"]
    places = {**(dino.get("params") or {}), **dino,
              "scaler_samples": settings.get("scaler_samples")}
    for name, (low, high) in INT_SETTINGS.items():
        if name in places and places[name] is not None:
            check_int(f"{path}: model setting {name}", places[name], low, high)
    for name, (lower, upper) in FLOAT_SETTINGS.items():
        if name in places and places[name] is not None:
            check_number(f"{path}: model setting {name}", places[name], lower, upper)


def _table_model(settings: dict, arrays: dict[str, np.ndarray]) -> TableModel:
    """Rebuild scaler + DINO pipeline and encoder from a model file's settings and arrays."""
    broken = [name for name, values in arrays.items() if not np.isfinite(values).all()]
    if broken:
        raise ValueError(f"non-finite values in '{broken[0]}'")
    scaler = StandardScaler(**settings["scaler"])
    scaler.mean_, scaler.var_, scaler.scale_ = (arrays[f"scaler.{k}"]
                                                for k in ("mean", "var", "scale"))
    scaler.n_features_in_, scaler.n_samples_seen_ = len(scaler.mean_), settings["scaler_samples"]
    estimator = ESTIMATORS[settings["dino"].get("estimator", "DINORegressor")]
    dino = estimator.from_fitted_state(
        settings["dino"], {k[len("dino."):]: v for k, v in arrays.items() if k.startswith("dino.")})
    if dino.n_features_in_ != scaler.n_features_in_:
        raise ValueError(f"scaler has {scaler.n_features_in_} features, the model "
                         f"{dino.n_features_in_}")
    encoder = FeatureEncoder(**settings["encoder"])
    return TableModel(pipeline=make_pipeline(scaler, dino), features=list(settings["features"]),
                      target=str(settings["target"]), encoder=encoder)
