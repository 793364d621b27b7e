"""Mixed initialisation on SmolLM2: the closed-form head part against the engine's autograd.

Reference: the eNTK engine (itself checked against brute-force autograd Jacobians in
test_kernel*) over the head alone and over body + head together.
"""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["good", "awful", "not bad", "wonderful", "grief", "calm"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mixed(smollm2):
    from transferscope.ntk.experiments.random_head import mixed_task
    from transferscope.ntk.task import PromptTask

    pretrained = PromptTask('Is the word "{text}" positive or negative? Answer:',
                            ("positive", "negative"), smollm2)
    return mixed_task(pretrained, head_seed=4)


def test_head_part_equals_the_engine_kernel_of_the_head(mixed):
    from transferscope.ntk.experiments.random_head import head_features

    engine = mixed.kernel(TEXTS, params=lambda name: False, progress=False).kernel
    h = head_features(mixed, TEXTS, batch_size=4)  # two batches, different padding
    np.testing.assert_allclose(h @ h.T + 1, engine, rtol=1e-5, atol=1e-6 * np.abs(engine).max())


@pytest.mark.slow
def test_body_plus_head_equals_the_joint_kernel(mixed):
    """6 words: body part + closed-form head part = the engine's kernel over both (fast
    version against plain autograd, 3 words: test_fast_claims.py)."""
    from transferscope.ntk.experiments.finetune import parameter_spec
    from transferscope.ntk.experiments.random_head import mixed_kernel

    parts = mixed_kernel(mixed, TEXTS, "attention@last-1", progress=False)
    joint = mixed.kernel(TEXTS, parameter_spec(mixed, "attention@last-1"), progress=False).kernel
    np.testing.assert_allclose(parts.total, joint, rtol=1e-5, atol=1e-7 * np.abs(joint).max())
    np.testing.assert_allclose(parts.outputs, mixed.outputs(TEXTS), rtol=1e-5, atol=1e-6)
    assert 0 < parts.head_share() < 1
