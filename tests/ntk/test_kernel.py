"""eNTK engine against a brute-force Jacobian contraction on a small attention model.

The reference stacks every per-example gradient with plain ``torch.autograd.grad`` (one
backward per example and output) and multiplies: nothing of the engine is used.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from transferscope.core.errors import InputError
from transferscope.ntk import batched_output, empirical_ntk, empirical_ntk_result
from transferscope.ntk.kernel.sketch import hash_tables, sketch_error
from transferscope.ntk.params import select_parameters


class TinyAttentionLM(torch.nn.Module):
    """Embedding, one pre-norm attention block with q/k/v/o projections, a tied LM head."""

    def __init__(self, vocab: int = 23, dim: int = 8, heads: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.heads = heads
        self.embed = torch.nn.Embedding(vocab, dim)
        self.norm = torch.nn.LayerNorm(dim)
        self.q_proj = torch.nn.Linear(dim, dim)
        self.k_proj = torch.nn.Linear(dim, dim, bias=False)
        self.v_proj = torch.nn.Linear(dim, dim, bias=False)
        self.o_proj = torch.nn.Linear(dim, dim)
        self.final_norm = torch.nn.LayerNorm(dim)
        self.lm_head = torch.nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.embed.weight  # tied, as in SmolLM2
        self.double()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits at the last position of every sequence (ids: (B, T))."""
        x = self.embed(ids)
        h = self.norm(x)
        b, t, d = h.shape

        def split(z):
            return z.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(h)), split(self.k_proj(h)), split(self.v_proj(h))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
                            + torch.triu(torch.full((t, t), -1e9, dtype=h.dtype), 1), -1)
        x = x + self.o_proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return self.lm_head(self.final_norm(x)[:, -1])


def one_output(model, ids):
    """Unbatched: f for one example (a 1-D tensor of token ids)."""
    logits = model(ids[None])[0]
    return logits[3] - logits[5]


@batched_output
def batch_output(model, ids):
    logits = model(ids)
    return logits[:, 3] - logits[:, 5]


@batched_output
def batch_three(model, ids):
    return model(ids)[:, [1, 4, 9]]


def brute_force_jacobian(model, examples, fn, params) -> np.ndarray:
    """(rows, P) float64: one autograd backward per example and output, stacked."""
    chosen = [p for _, p in select_parameters(model, params)]
    rows = []
    for x in examples:
        out = fn(model, x).reshape(-1)
        for c in range(out.shape[0]):
            grads = torch.autograd.grad(out[c], chosen, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([torch.zeros(p.numel(), dtype=torch.float64) if g is None
                                   else g.reshape(-1).double() for p, g in zip(chosen, grads)]))
    return torch.stack(rows).numpy()


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def model():
    return TinyAttentionLM()


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 23, (11, 6), generator=gen)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("params", ["attention", "all", "head", "bias",
                                    lambda name: name.startswith(("norm", "v_proj"))])
@pytest.mark.parametrize("path", ["auto", "structured", "materialize"])
def test_exact_equals_brute_force(model, data, params, path):
    reference = brute_force_jacobian(model, data, one_output, params)
    want = reference @ reference.T
    got = empirical_ntk(model, data, batch_output, params, block_size=4, linear_path=path,
                        progress=False)
    assert got.dtype == np.float64 and got.shape == (11, 11)
    assert rel_err(got, want) < 1e-8


def test_unbatched_output_fn_matches(model, data):
    """Per-example calls (each example its own forward) are grouped into the same factors."""
    reference = brute_force_jacobian(model, data, one_output, "all")
    got = empirical_ntk(model, list(data), one_output, "all", block_size=5, progress=False)
    assert rel_err(got, reference @ reference.T) < 1e-8


def test_variable_lengths_unbatched(model):
    examples = [torch.tensor(s) for s in ([1, 2, 3], [4, 5, 6, 7, 8], [9], [3, 3, 2, 1])]
    reference = brute_force_jacobian(model, examples, one_output, "all")
    got = empirical_ntk(model, examples, one_output, "all", block_size=3, progress=False)
    assert rel_err(got, reference @ reference.T) < 1e-8


def test_cross_kernel(model, data):
    j1 = brute_force_jacobian(model, data[:7], one_output, "attention")
    j2 = brute_force_jacobian(model, data[7:], one_output, "attention")
    got = empirical_ntk(model, data[:7], batch_output, "attention", inputs2=data[7:],
                        block_size=3, progress=False)
    assert got.shape == (7, 4)
    assert rel_err(got, j1 @ j2.T) < 1e-8


@pytest.mark.parametrize("budget_gb", [2e-6, 1e-8])
@pytest.mark.parametrize("path", ["structured", "materialize"])
def test_tiny_budget_splits_parameters_and_rows_and_stays_exact(model, data, budget_gb, path,
                                                               monkeypatch):
    """A budget smaller than one parameter's factors: chunks of parameters, then row groups.

    The tiny budget also forces bands of one leading row when gradients are built.
    """
    import transferscope.ntk.kernel.gram as gram

    monkeypatch.setattr(gram, "_TEMP_BYTES", 1)
    reference = brute_force_jacobian(model, data, one_output, "all")
    result = empirical_ntk_result(model, data, batch_output, "all", block_size=2,
                                  memory_budget_gb=budget_gb, linear_path=path, progress=False,
                                  cache_key=None)
    assert rel_err(result.kernel, reference @ reference.T) < 1e-8
    assert np.array_equal(result.kernel, result.kernel.T)
    j1 = brute_force_jacobian(model, data[:7], one_output, "attention")
    j2 = brute_force_jacobian(model, data[7:], one_output, "attention")
    cross = empirical_ntk(model, data[:7], batch_output, "attention", inputs2=data[7:],
                          block_size=2, memory_budget_gb=budget_gb, linear_path=path,
                          progress=False, cache_key=None)
    assert rel_err(cross, j1 @ j2.T) < 1e-8


def test_chunk_plan_respects_the_budget(model, data, tmp_path):
    """Every parameter chunk's factors fit a quarter of the budget unless it is one parameter."""
    from transferscope.ntk.kernel import EngineOptions
    from transferscope.ntk.kernel.local import KernelDriver

    selected = select_parameters(model, "all")
    run = KernelDriver(model, batch_output, selected, "exact", tmp_path,
                    EngineOptions(memory_budget_gb=2e-6, block_size=3, progress=False),
                    persist=True)
    run.compute(data, None)
    paths = sorted(tmp_path.glob("x-*.pt"))
    sizes = run._row_bytes(paths)
    chunks = run._parameter_chunks(sizes, None, run.budget / 4)
    assert sorted(k for c in chunks for k in c) == list(range(len(selected)))
    assert len(chunks) > 1
    for chunk in chunks:
        held = sum(b[k] for b in sizes for k in chunk)
        assert held <= run.budget / 4 or len(chunk) == 1
    # the byte estimate is what the loaded (padded) factors really take
    for k in range(len(selected)):
        loaded = run._load_rows(paths, [k])
        real = sum(u.out.nbytes + (0 if u.inp is None else u.inp.nbytes) for u in loaded.uses[k])
        assert real == sum(b[k] for b in sizes)


def test_interrupted_gram_resumes_after_its_finished_chunks(model, data, monkeypatch):
    import transferscope.ntk.kernel.local as local

    real = local.gram_of_blocks
    calls = {"n": 0, "fail_at": 3}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "gram_of_blocks", flaky)
    options = {"block_size": 3, "memory_budget_gb": 4e-5, "progress": False,
               "cache_key": "resume-gram"}
    with pytest.raises(KeyboardInterrupt):
        empirical_ntk(model, data, batch_output, "all", **options)
    calls.update(n=0, fail_at=-1)
    result = empirical_ntk_result(model, data, batch_output, "all", **options)
    resumed = calls["n"]
    calls.update(n=0)
    empirical_ntk_result(model, data, batch_output, "all", **{**options, "cache_key": "fresh"})
    assert calls["n"] > 3  # several parameter chunks, one Gram call each
    assert resumed == calls["n"] - 2  # the two finished chunk Grams were not recomputed
    reference = brute_force_jacobian(model, data, one_output, "all")
    assert rel_err(result.kernel, reference @ reference.T) < 1e-8


def test_multi_output_rows_are_example_major(model, data):
    def three(m, ids):
        return m(ids[None])[0, [1, 4, 9]]

    reference = brute_force_jacobian(model, data[:5], three, "all")
    result = empirical_ntk_result(model, data[:5], batch_three, "all", block_size=2,
                                  progress=False)
    assert result.outputs_per_example == 3 and result.kernel.shape == (15, 15)
    assert rel_err(result.kernel, reference @ reference.T) < 1e-8


def test_parameter_used_outside_a_module_falls_back_to_the_loop(model, data):
    """A weight read directly (not through its module) is invisible to hooks: still exact."""

    @batched_output
    def direct(m, ids):
        hidden = m.final_norm(m.embed(ids))[:, -1]
        return hidden @ m.q_proj.weight[0] + m.lm_head(hidden)[:, 2]

    def direct_one(m, ids):
        return direct(m, ids[None])[0]

    reference = brute_force_jacobian(model, data, direct_one, "all")
    result = empirical_ntk_result(model, data, direct, "all", block_size=4, progress=False)
    assert result.details["engine"] == "loop" and "q_proj.weight" in result.details["note"]
    assert rel_err(result.kernel, reference @ reference.T) < 1e-8


def test_float32_gradients_fast_gram_matches_float64_products(data):
    """The default Gram of float32 gradients (float32 chunks summed in float64) stays near 1e-6."""
    model32 = TinyAttentionLM(seed=2).float()
    fast = empirical_ntk(model32, data, batch_output, "all", progress=False)
    full = empirical_ntk(model32, data, batch_output, "all", gram_dtype="float64",
                         linear_path="materialize", progress=False)
    assert fast.dtype == np.float64
    assert rel_err(fast, full) < 1e-5


def test_many_rows_take_the_block_triangle_path_and_stay_exact(model):
    """From 256 rows the materialised Gram multiplies only its upper block triangle."""
    gen = torch.Generator().manual_seed(7)
    many = torch.randint(0, 23, (260, 4), generator=gen)
    got = empirical_ntk(model, many, batch_output, "attention", linear_path="materialize",
                        progress=False)
    reference = brute_force_jacobian(model, many, one_output, "attention")
    assert np.array_equal(got, got.T)
    assert rel_err(got, reference @ reference.T) < 1e-8


def test_kernel_is_symmetric_psd(model, data):
    k = empirical_ntk(model, data, batch_output, "all", progress=False)
    assert np.array_equal(k, k.T)
    eig = np.linalg.eigvalsh(k)
    assert eig.min() > -1e-10 * eig.max()


def countsketch_matrix(selected, dim: int, seed: int) -> np.ndarray:
    """(dim, P) matrix S of the sketch: column k holds the sign s(k) in row h(k), zeros elsewhere.

    Only the hash tables come from the code under test; the projection is rebuilt here.
    """
    blocks = []
    for index, (_, param) in enumerate(selected):
        buckets, signs = hash_tables(param.numel(), dim, seed, index)
        block = np.zeros((dim, param.numel()))
        block[buckets.numpy(), np.arange(param.numel())] = signs.numpy() * 2.0 - 1.0
        blocks.append(block)
    return np.hstack(blocks)


def countsketch_mean_square_error(jacobian: np.ndarray, dim: int) -> float:
    """Exact ``E |K_hat - K|_F^2`` of a CountSketch with independent buckets and signs.

    ``(tr(K)^2 + |K|_F^2 - 2 sum_ij sum_k J_ik^2 J_jk^2) / d``: only pairs of coordinates that
    share a bucket contribute, each with probability 1/d.
    """
    exact = jacobian @ jacobian.T
    squares = jacobian**2
    return float((np.trace(exact) ** 2 + np.sum(exact**2)
                  - 2 * np.sum(squares @ squares.T)) / dim)


def test_sketch_is_the_countsketch_of_brute_force_gradients_per_seed(model, data):
    """Per seed, the engine's sketched kernel is exactly ``J S^T S J^T`` for that seed's tables.

    J from plain autograd, S rebuilt from the hash tables (deterministic, cannot fail by
    chance). Different seeds give different kernels, the same seed the same one. Per seed the
    error also stays within Markov's bound on the exact second moment at delta = 1e-4 (chance
    failure over the 8 seeds <= 8e-4); that bound is loose by construction (100x the RMS) and
    only catches a sketch off in scale, the next test checks the size itself (seeds 0-39,999:
    largest error 3.6x the exact RMS). The reported RMS is the plug-in formula on the
    sketched kernel itself.
    """
    dim = 64
    jacobian = brute_force_jacobian(model, data, one_output, "all")
    exact = jacobian @ jacobian.T
    selected = select_parameters(model, "all")
    scale = np.abs(exact).max()
    markov_limit = np.sqrt(countsketch_mean_square_error(jacobian, dim) / 1e-4)
    kernels = []
    for seed in range(8):
        res = empirical_ntk_result(model, data, batch_output, "all", mode="sketch",
                                   sketch_dim=dim, seed=seed, progress=False, cache_key=None)
        projected = jacobian @ countsketch_matrix(selected, dim, seed).T
        assert np.abs(res.kernel - projected @ projected.T).max() <= 1e-10 * scale
        assert np.array_equal(res.kernel, res.kernel.T) and res.seed == seed
        assert np.linalg.norm(res.kernel - exact) <= markov_limit
        frob = np.linalg.norm(res.kernel)
        assert res.error_rms == pytest.approx(
            np.sqrt(np.trace(res.kernel) ** 2 + frob**2) / (np.sqrt(dim) * frob), rel=1e-12)
        assert res.error_bound == pytest.approx(res.error_rms / np.sqrt(res.delta), rel=1e-12)
        kernels.append(res.kernel)
    for a in range(len(kernels)):
        for b in range(a):
            assert np.abs(kernels[a] - kernels[b]).max() > 1e-3 * scale
    again = empirical_ntk(model, data, batch_output, "all", mode="sketch", sketch_dim=dim,
                          seed=0, progress=False, cache_key=None)
    assert np.array_equal(again, kernels[0])


def test_sketch_mean_square_error_matches_its_closed_form(model, data):
    """Over 2,000 seeds the mean squared Frobenius error of the sketch equals its closed form,
    and the stated RMS (``sketch_error``, which drops CountSketch's negative term) bounds the
    true one within 20%.

    The previous test ties the engine to ``J S^T S J^T`` for each seed's tables, so here the
    tables are drawn with ``hash_tables`` and applied with numpy (0.7 s for 2,000 seeds).
    Chance failure (CLT): the mean of 2,000 iid squared errors leaves 4 standard errors of its
    expectation with probability about 6e-5 (the squared error has E X^2 about 1.5 M^2, a
    light enough tail for the normal approximation at n = 2,000). Sweep over 20 disjoint
    blocks of 2,000 seeds (0-39,999): |z| <= 2.0, standard error 1.6% of the expectation.
    """
    dim, draws = 64, 2000
    jacobian = brute_force_jacobian(model, data, one_output, "all")
    exact = jacobian @ jacobian.T
    selected = select_parameters(model, "all")
    expected = countsketch_mean_square_error(jacobian, dim)
    errors = np.empty(draws)
    for seed in range(draws):
        projected = jacobian @ countsketch_matrix(selected, dim, seed).T
        errors[seed] = np.sum((projected @ projected.T - exact) ** 2)
    standard_error = errors.std(ddof=1) / np.sqrt(draws)
    assert abs(errors.mean() - expected) <= 4 * standard_error
    assert standard_error <= 0.05 * expected  # so the check above pins E to within 20%
    stated_rms, stated_bound = sketch_error(np.diag(exact), exact, dim, delta=0.05)
    true_rms = np.sqrt(expected) / np.linalg.norm(exact)
    assert true_rms <= stated_rms <= 1.2 * true_rms
    assert stated_bound == pytest.approx(stated_rms / np.sqrt(0.05))


def test_interrupted_run_resumes_from_finished_blocks(model, data):
    calls = {"n": 0, "fail_at": 3}

    @batched_output
    def flaky(m, ids):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt
        return batch_output(m, ids)

    flaky.cache_token = "flaky-test"
    with pytest.raises(KeyboardInterrupt):
        empirical_ntk(model, data, flaky, "all", block_size=3, progress=False)
    # calls: 1 = the autograd check on two examples, 2 = block 0, 3 = block 1 (interrupted)
    calls["fail_at"] = -1
    result = empirical_ntk_result(model, data, flaky, "all", block_size=3, progress=False)
    blocks = math.ceil(len(data) / 3)
    assert calls["n"] - 3 == blocks - 1  # block 0 was not recomputed
    reference = brute_force_jacobian(model, data, one_output, "all")
    assert rel_err(result.kernel, reference @ reference.T) < 1e-8
    cached = empirical_ntk_result(model, data, flaky, "all", block_size=3, progress=False)
    assert cached.from_cache and np.array_equal(cached.kernel, result.kernel)


def test_bad_inputs_give_one_line_errors(model, data):
    with pytest.raises(InputError, match="mode"):
        empirical_ntk(model, data, batch_output, mode="fast")
    with pytest.raises(InputError, match="params"):
        empirical_ntk(model, data, batch_output, params="lora")
    with pytest.raises(InputError, match="output_fn result shape"):
        empirical_ntk(model, data, batched_output(lambda m, x: m(x)[:2, 0]), progress=False)
    with pytest.raises(InputError, match="inputs"):
        empirical_ntk(model, [], batch_output)
