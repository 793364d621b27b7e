"""The LM task layer on the real embedded models (SmolLM2, all-MiniLM-L6-v2)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from transferscope.core.errors import InputError, ModelError
from transferscope.ntk import PromptTask
from transferscope.ntk.task import binary_targets, check_template

CAUSAL = os.environ.get("TRANSFERSCOPE_NTK_TEST_MODEL", "smollm2")
TEMPLATE = "Review: {text}\nSentiment:"
TEXTS = ["a wonderful, moving film", "terrible food and rude staff", "ok", "I hated every minute"]


@pytest.fixture(scope="module")
def causal(request):
    """The embedded SmolLM2 (the session's shared copy), or the model the env var names."""
    model = CAUSAL if CAUSAL != "smollm2" else request.getfixturevalue("smollm2")
    return PromptTask(TEMPLATE, ("positive", "negative"), model)


@pytest.fixture(scope="module")
def encoder(minilm):
    return PromptTask(TEMPLATE, ("positive", "negative"), minilm, head_seed=3)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))


def test_binary_output_is_the_logit_difference_of_the_full_model(causal):
    """Against the model's own full-vocabulary logits, one unpadded prompt at a time."""
    got = causal.outputs(TEXTS)
    plus = causal.tokenizer.encode(" positive", add_special_tokens=False)
    minus = causal.tokenizer.encode(" negative", add_special_tokens=False)
    for text, value in zip(TEXTS, got):
        ids = causal.tokenizer(TEMPLATE.replace("{text}", text), return_tensors="pt")
        with torch.no_grad():
            logits = causal.model.body(**ids).logits[0, -1]
        assert value == pytest.approx(float(logits[plus[0]] - logits[minus[0]]), abs=1e-4)
    # the pretrained model already leans the right way on the two clear cases
    assert got[0] > got[1]


def test_padding_does_not_change_f(causal):
    batched = causal.outputs(TEXTS, batch_size=4)
    alone = np.array([causal.outputs([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, alone, atol=1e-4)


def test_multi_class_gives_one_logit_per_word(causal):
    task = PromptTask(TEMPLATE, ("positive", "negative", "neutral"), causal_pair(causal))
    got = task.outputs(TEXTS[:2])
    assert got.shape == (2, 3)
    binary = causal.outputs(TEXTS[:2])
    np.testing.assert_allclose(got[:, 0] - got[:, 1], binary, atol=1e-4)


def test_multi_token_label_word_is_named(causal):
    with pytest.raises(InputError, match=r"label word.*tokens \["):
        PromptTask(TEMPLATE, ("positive", "antidisestablishmentarianism"), causal_pair(causal))


def test_template_without_text_is_rejected():
    with pytest.raises(InputError, match=r"template.*expected a string containing \{text\}"):
        check_template("Sentiment:")
    with pytest.raises(InputError, match="template"):
        PromptTask("no placeholder", ("positive", "negative"), "no-model-is-loaded-first")


def test_unknown_model_is_one_clear_error():
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        PromptTask(TEMPLATE, ("positive", "negative"), "no-such-model")


def test_max_tokens_keeps_the_cue(causal):
    task = PromptTask(TEMPLATE, ("positive", "negative"), causal_pair(causal), max_tokens=12)
    long_text = "the plot drags on and on " * 10
    ids = task.encode([long_text])["input_ids"][0]
    assert len(ids) <= 12
    assert task.tokenizer.decode(ids).endswith("Sentiment:")


def causal_pair(task: PromptTask):
    return task.model.body, task.tokenizer


def test_binary_targets():
    y, classes = binary_targets(["pos", "neg", "pos"], positive="pos")
    assert list(y) == [1, -1, 1] and classes == ["neg", "pos"]
    with pytest.raises(InputError, match="exactly two classes"):
        binary_targets(["a", "b", "c"])
    with pytest.raises(InputError, match=r"label\[1\]"):
        binary_targets(["a", None])


def test_encoder_head_reads_the_mean_pooled_sentence_embedding(encoder):
    """f_0 = w . mean-pooled hidden state: check against sentence-transformers' own embedding
    of all-MiniLM-L6-v2 (mean pooling then L2 normalisation) up to that normalisation."""
    from sentence_transformers import SentenceTransformer

    from transferscope.core.models import resolve_model

    st = SentenceTransformer(str(resolve_model("minilm")), device="cpu")
    prompts = encoder.format(TEXTS)
    unit = st.encode(prompts, convert_to_tensor=True).double()
    enc = encoder.encode(TEXTS)
    with torch.no_grad():
        hidden = encoder.model.body(**enc).last_hidden_state.double()
    mask = enc["attention_mask"][..., None].double()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose((pooled / pooled.norm(dim=1, keepdim=True)).numpy(),
                               unit.numpy(), atol=1e-5)
    w = encoder.model.head.weight.detach().double()[0]
    np.testing.assert_allclose(encoder.outputs(TEXTS), (pooled @ w).numpy(), atol=1e-4)


def test_mixed_init_kernel_is_body_plus_head(encoder):
    """The head's part has a closed form: <h_i, h_j> + 1 (weight and bias of a linear head)."""
    enc = encoder.encode(TEXTS)
    with torch.no_grad():
        hidden = encoder.model.body(**enc).last_hidden_state.double()
    mask = enc["attention_mask"][..., None].double()
    pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    head = encoder.kernel(TEXTS, params=lambda name: False, progress=False).kernel
    np.testing.assert_allclose(head, pooled @ pooled.T + 1.0, rtol=1e-5)
    body = encoder.kernel(TEXTS, "last-1", include_head=False, progress=False).kernel
    both = encoder.kernel(TEXTS, "last-1", progress=False).kernel
    np.testing.assert_allclose(both, body + head, rtol=1e-6, atol=1e-9 * np.abs(both).max())
