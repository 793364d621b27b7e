"""The embedded models load offline and behave like the real pretrained models."""

import subprocess
import sys

import pytest
import torch

from transferscope.core.errors import ModelError
from transferscope.core.models import REGISTRY, load_causal_lm, model_kind, resolve_model


def test_smollm2_knows_the_capital_of_france(smollm2):
    model, tokenizer = smollm2
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1]
    top5 = [tokenizer.decode(int(i)) for i in torch.topk(logits, 5).indices]
    assert " Paris" in top5, top5


def test_smollm2_is_the_135m_model_in_float32(smollm2):
    model, _ = smollm2
    n = sum(p.numel() for p in model.parameters())
    assert 134e6 < n < 135e6  # tied embeddings: 134.5M
    assert model.config.num_hidden_layers == 30
    assert next(model.parameters()).dtype == torch.float32


def test_minilm_prefers_a_paraphrase():
    from transferscope.core.embeddings import SentenceEncoder

    enc = SentenceEncoder("minilm")
    v = enc.encode([
        "A man is playing a guitar.",
        "Someone plays an acoustic guitar.",
        "The stock market fell sharply today.",
    ])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.3


def test_second_load_reads_the_converted_safetensors(monkeypatch):
    """After the first conversion, loads come from the cache directory: no loader is handed the
    GGUF (every from_pretrained call is recorded) and the weights come from model.safetensors."""
    import transformers

    resolve_model("smollm2")  # converts once if this cache has not yet
    calls = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained

        def spy(*args, _original=original, **kwargs):
            calls.append((args, kwargs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    model, _ = load_causal_lm("smollm2")
    model_dir = resolve_model("smollm2")
    assert len(calls) == 2, calls
    assert all("gguf_file" not in kw and args[0] == str(model_dir) for args, kw in calls)
    assert (model_dir / "model.safetensors").exists() and model_kind(model_dir) == "causal"
    assert model.config.vocab_size == 49152


def test_local_directory_is_accepted_for_the_encoder():
    d = REGISTRY["minilm"].source()
    assert resolve_model(str(d)) == d and model_kind(d) == "encoder"


@pytest.mark.parametrize(
    ("arg", "fragment"),
    [
        ("/no/such/dir", "no such file or directory"),
        ("nosuchmodel", "unknown model 'nosuchmodel'"),
    ],
)
def test_bad_model_names_raise_one_line(arg, fragment):
    with pytest.raises(ModelError) as err:
        resolve_model(arg)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(tmp_path)


def test_prepare_refuses_a_config_without_weights(tmp_path):
    """`models prepare` says "ready" only for what loads (a config alone once passed)."""
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], '
                                          '"model_type": "llama"}')
    res = _cli("models", "prepare", str(tmp_path))
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert str(tmp_path) in lines[0] and "model.safetensors" in lines[0]
    assert "ready" not in res.stdout


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "transferscope", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("arg", ["/no/such/dir", "nosuchmodel", "EMPTY_DIR"])
def test_cli_bad_model_is_one_line_and_nonzero(arg, tmp_path):
    arg = str(tmp_path) if arg == "EMPTY_DIR" else arg
    res = _cli("models", "prepare", arg)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model" in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_cli_debug_shows_the_traceback():
    res = _cli("--debug", "models", "prepare", "/no/such/dir")
    assert res.returncode == 2 and "Traceback" in res.stderr


def test_cli_help_lists_every_group():
    res = _cli("--help")
    assert res.returncode == 0
    for group in ("ntk", "dino", "bias", "models", "doctor", "demo"):
        assert group in res.stdout


def test_conversion_is_keyed_by_the_gguf_content_not_its_install_path(tmp_path):
    """A second venv with the same wheel shares the conversion; a different file does not."""
    import shutil

    from transferscope.core.models import _converted_dir, embedded_gguf_path

    original = embedded_gguf_path("smollm2")
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    assert _converted_dir(copy) == _converted_dir(original)
    with open(copy, "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 0xFF]))
    assert _converted_dir(copy) != _converted_dir(original)



def test_a_failed_demo_stage_exits_non_zero_and_still_writes_the_report(tmp_path):
    """`typer.Exit(1)` raised by a command must reach the process (it once exited 0)."""
    broken = tmp_path / "broken-encoder"
    broken.mkdir()
    (broken / "config.json").write_text('{"architectures": ["BertModel"], "model_type": "bert"}')
    res = _cli("demo", "--only", "models", "--encoder", str(broken), "--out", str(tmp_path / "r"))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "stage models failed" in res.stdout
    assert "This stage failed" in (tmp_path / "r" / "index.html").read_text()


def test_a_folder_whose_weights_do_not_fit_its_config_is_not_ready(tmp_path):
    """A copy of the embedded MiniLM whose config asks for 7 layers (its weights hold 6):
    transformers would fill layer 6 with random numbers and `models prepare` said "ready";
    now one line names the missing keys (and an encoder with no weights for its config is
    never loaded)."""
    import json
    import shutil

    from transferscope.core.errors import ModelError
    from transferscope.core.models import load_encoder, resolve_model

    folder = tmp_path / "minilm7"
    shutil.copytree(resolve_model("minilm"), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 7}))
    with pytest.raises(ModelError, match=r"the weights in .*minilm7 do not fit its "
                                         r"config.json \(BertModel\): 16 missing keys "
                                         r"\(encoder.layer.6.attention"):
        load_encoder(folder)
    res = _cli("models", "prepare", str(folder))
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "missing keys" in lines[0], res.stderr
    assert "ready" not in res.stdout
