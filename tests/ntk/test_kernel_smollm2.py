"""The engine on the real SmolLM2-135M-Instruct weights and real lexicon words.

Reference: every per-example gradient of f w.r.t. the attention projections, one
``torch.autograd.grad`` per example on the unpadded prompt alone, stacked and multiplied.
The model runs in float64 so the comparison tests the engine's algebra, not float32 noise.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from transferscope.ntk import PromptTask, empirical_ntk_result
from transferscope.ntk.data import vader_words
from transferscope.ntk.params import select_parameters

MODEL = os.environ.get("TRANSFERSCOPE_NTK_TEST_MODEL", "smollm2")


@pytest.fixture(scope="module")
def task64():
    return PromptTask('Is the word "{text}" positive or negative? Answer:',
                      ("positive", "negative"), MODEL, dtype=torch.float64)


@pytest.fixture(scope="module")
def words():
    data = vader_words()
    rng = np.random.default_rng(0)
    return [data.texts[i] for i in rng.choice(len(data), 8, replace=False)]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))


def test_parameter_sets_have_the_published_sizes(smollm2):
    """26.5M attention and 134.5M total parameters (SmolLM2-135M, tied embedding)."""
    model = smollm2[0]
    sizes = {p: sum(x.numel() for _, x in select_parameters(model, p))
             for p in ("attention", "all", "head", "last-2")}
    assert sizes["attention"] == 30 * (2 * 576 * 576 + 2 * 576 * 192)  # GQA: 3 KV heads of 64
    assert sizes["all"] == 134_515_008
    assert sizes["head"] == 49152 * 576  # the tied embedding, found through lm_head's name
    assert sizes["last-2"] == 2 * (sizes["attention"] // 30 + 3 * 576 * 1536 + 2 * 576)


@pytest.mark.slow  # 1-3 min on 2 idle cores (float64, one backward pass per word)
@pytest.mark.parametrize(("params", "count"), [("attention", 8), ("all", 4)])
def test_exact_kernel_equals_brute_force(task64, words, params, count):
    """'all' includes the tied embedding / LM head (structured embedding-linear pairs).
    The thorough version (float64, 8 and 4 words); test_fast_claims.py has the fast one."""
    words = words[:count]
    chosen = [p for _, p in select_parameters(task64.model, params)]
    rows = []
    for word in words:  # one prompt at a time: no padding, no batching, plain autograd
        enc = task64.tokenizer(task64.format([word]), return_tensors="pt")
        with torch.enable_grad():
            logits = task64.model.body(**enc).logits[0, -1]
            f = logits[task64.word_ids[0]] - logits[task64.word_ids[1]]
            grads = torch.autograd.grad(f, chosen)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    jac = torch.stack(rows)
    want = (jac @ jac.T).numpy()
    result = empirical_ntk_result(task64.model, words, task64.output_fn, params,
                                  block_size=4, progress=False)
    got = result.kernel
    assert result.details["engine"] == "hooks"
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-8
    assert np.array_equal(got, got.T)
    eig = np.linalg.eigvalsh(got)
    assert eig.min() > -1e-10 * eig.max()
