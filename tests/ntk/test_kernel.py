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


def test_sketch_stays_within_its_bound_over_seeds(model, data):
    reference = brute_force_jacobian(model, data, one_output, "all")
    exact = reference @ reference.T
    errors, bounds, rms = [], [], []
    for seed in range(20):
        res = empirical_ntk_result(model, data, batch_output, "all", mode="sketch",
                                   sketch_dim=64, seed=seed, progress=False)
        errors.append(np.linalg.norm(res.kernel - exact) / np.linalg.norm(exact))
        bounds.append(res.error_bound)
        rms.append(res.error_rms)
        assert np.array_equal(res.kernel, res.kernel.T)
    errors = np.array(errors)
    assert np.all(errors <= np.array(bounds))
    # the stated RMS is an upper bound on the mean squared error, and not a loose one
    assert np.mean(errors**2) <= 1.5 * np.mean(np.square(rms))
    assert np.mean(errors**2) >= 0.1 * np.mean(np.square(rms))
    # different seeds, different sketches; same seed, same sketch
    again = empirical_ntk(model, data, batch_output, "all", mode="sketch", sketch_dim=64,
                          seed=0, progress=False, cache_key=None)
    first = empirical_ntk(model, data, batch_output, "all", mode="sketch", sketch_dim=64,
                          seed=0, progress=False, cache_key=None)
    assert np.array_equal(again, first)


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
