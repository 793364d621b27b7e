"""One kernel computation, driven from this process: blocks -> stored payloads -> Gram.

The examples are cut into ``block_size`` blocks; the executor (:mod:`.blocks`) captures each
block's gradient factors (or, in sketch mode, its sketched rows) and hands them back; the driver
writes each to the work directory as it arrives (one file per block, ``x-00000.pt`` ...), then
builds the Gram, writing the part accumulated so far after every step. An interrupted run
resumes from those files, whichever executor wrote them. Two Gram plans: ``parameter-chunks``
(in this process) loads one chunk of parameters for all rows at a time (at most a quarter of the
budget, memory-mapped from disk) and multiplies; ``block-pairs`` (an executor whose workers
receive blocks by value) makes every pair of blocks ``(i, j), i <= j`` one call whose float64
Gram block fills ``K[i, j]`` and, mirrored, ``K[j, i]``. Memory: without a cache entry to resume,
blocks stay in memory up to half the budget (the rest go to disk); a kernel of n x n float64 is
held as well.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from rich.progress import Progress

from transferscope.core.io import load_array, read_json, save_array, write_json
from transferscope.core.progress import progress_bar
from transferscope.ntk.kernel.blocks import (
    BlockEngine,
    BlockExecutor,
    CapturedBlock,
    LocalExecutor,
    save_torch,
    state_to_block,
)
from transferscope.ntk.kernel.capture import BlockFactors, only_selected_trainable
from transferscope.ntk.kernel.gram import concat_blocks, gram_of_blocks
from transferscope.ntk.kernel.options import EngineOptions
from transferscope.ntk.kernel.ray import RayExecutor

MANIFEST = "manifest.json"
CHUNK_GRAM_STATE, CHUNK_GRAM_MATRIX = "gram.json", "gram.npy"
# the block-pairs plan splits the Gram differently, so it has files of its own (named when Ray
# was its only user; kept so that existing work directories resume)
PAIR_GRAM_STATE, PAIR_GRAM_MATRIX = "gram-ray.json", "gram-ray.npy"


def block_executor(executor: Any) -> BlockExecutor:
    """``"local"``, ``"ray"`` or an executor object (see :class:`EngineOptions`)."""
    if executor == "local":
        return LocalExecutor()
    if executor == "ray":
        return RayExecutor()
    return executor


def save_gram_progress(kernel: np.ndarray, kernel_path: Path, state_path: Path, layout,
                       done: set) -> None:
    """The running Gram and what of it is finished, written atomically (the resume point)."""
    save_array(kernel_path, kernel)
    write_json(state_path, {"layout": layout, "done": sorted(done)}, indent=None)


def load_gram_progress(kernel_path: Path, state_path: Path, layout,
                       shape: tuple[int, int]) -> tuple[list, np.ndarray]:
    """What :func:`save_gram_progress` wrote for this ``layout`` (else nothing done, zeros)."""
    if state_path.exists() and kernel_path.exists():
        saved = read_json(state_path, "running Gram state")
        if saved.get("layout") == layout:
            return saved["done"], load_array(kernel_path, "running Gram")
    return [], np.zeros(shape)


def _nbytes(obj) -> int:
    """Bytes held by the tensors in a nested structure, each storage counted once."""
    seen: dict[int, int] = {}

    def visit(value) -> None:
        if isinstance(value, torch.Tensor):
            seen[value.untyped_storage().data_ptr()] = value.untyped_storage().nbytes()
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, list | tuple):
            for v in value:
                visit(v)

    visit(obj)
    return sum(seen.values())


class KernelDriver:
    """One computation with its settings; :meth:`compute` does it (resumably) in ``work``.

    ``persist``: write every block to ``work`` (a cache entry to resume); otherwise blocks stay
    in memory while they fit half the budget. ``finished`` counts the blocks and Gram steps
    computed by this run (not those resumed); ``on_finished(kind, key)``, if set, is called
    after each.
    """

    def __init__(self, model: torch.nn.Module, output_fn, selected, mode: str, work: Path,
                 options: EngineOptions | None = None, *, persist: bool = True):
        options = EngineOptions() if options is None else options
        self.model, self.output_fn, self.selected = model, output_fn, selected
        self.mode, self.work, self.budget = mode, Path(work), options.memory_budget_gb * 2**30
        self.block_size, self.show = options.block_size, options.progress
        self.engine = BlockEngine(model, output_fn, selected, mode,
                                  sketch_dim=options.sketch_dim, seed=options.seed,
                                  linear_path=options.linear_path, engine=options.engine,
                                  gram_dtype=options.gram_dtype)
        self.executor = block_executor(options.executor)
        self.device = next(iter(p for _, p in selected), torch.empty(0)).device
        self.shapes = self.engine.shapes
        self.n_outputs = 1
        self.sketch_diagonal: np.ndarray | None = None
        self.sketch_diagonal2: np.ndarray | None = None
        self.gram_stats: dict = {}
        self.persist = persist
        self._memory: dict[Path, object] = {}
        self._sizes: dict[Path, int] = {}
        self._rows_of: dict[Path, int] = {}
        # where the gradient phase's time goes: forward/backward vs sketching (or storing) factors
        self.seconds = {"capture": 0.0, "project_or_store": 0.0}
        self.finished = {"capture": 0, "gram": 0}
        self.on_finished = None

    # ----------------------------------------------------------------- manifest / resume
    def _manifest(self, n1: int, n2: int | None) -> dict:
        settings = {"n1": n1, "n2": n2, "block_size": self.block_size, "mode": self.mode,
                    "sketch_dim": self.engine.sketch_dim, "seed": self.engine.seed}
        path = self.work / MANIFEST
        if path.exists():
            saved = read_json(path, "kernel work-directory manifest")
            if saved.get("settings") == settings:
                return saved
            for stale in self.work.iterdir():  # different settings: the old blocks do not apply
                stale.unlink()
        manifest = {"settings": settings, "engine": None, "n_outputs": None, "note": None}
        self._write_manifest(manifest)
        return manifest

    def _write_manifest(self, manifest: dict) -> None:
        write_json(self.work / MANIFEST, manifest)

    def _finished(self, kind: str, key: Hashable) -> None:
        self.finished[kind] += 1
        if self.on_finished is not None:
            self.on_finished(kind, key)

    # ----------------------------------------------------------------- capture phase
    def _blocks(self, tag: str, examples: Sequence, manifest: dict, bar: Progress) -> list[Path]:
        starts = list(range(0, len(examples), self.block_size))
        paths = [self.work / f"{tag}-{k:05d}.pt" for k in range(len(starts))]
        task = bar.add_task(f"eNTK {self.mode}{self.executor.label}: gradients ({tag})",
                            total=len(paths))
        todo = [k for k, p in enumerate(paths) if not p.exists() and p not in self._memory]
        bar.advance(task, len(paths) - len(todo))

        def capture(ks: list[int]) -> None:
            jobs = [(k, (examples[starts[k]:starts[k] + self.block_size], dict(manifest)))
                    for k in ks]
            for k, captured in self.executor.map_blocks("capture", jobs):
                self._record(manifest, captured)
                stored = time.perf_counter()
                self._store(paths[k], captured.payload)
                self.seconds["capture"] += captured.seconds_capture
                self.seconds["project_or_store"] += (captured.seconds_project
                                                     + time.perf_counter() - stored)
                self._finished("capture", k)
                bar.advance(task)

        if todo and manifest["engine"] is None:  # checked once against autograd, then fanned out
            capture(todo[:1])
            todo = todo[1:]
        capture(todo)
        return paths

    def _record(self, manifest: dict, captured: CapturedBlock) -> None:
        """The first block decides hooks or loop for all (and is written down to resume)."""
        if manifest["engine"] is None:
            manifest.update(engine=captured.engine, note=captured.note,
                            n_outputs=captured.n_outputs)
            self._write_manifest(manifest)
        elif captured.note != manifest["note"]:
            manifest["note"] = captured.note

    def _store(self, path: Path, obj) -> None:
        size = _nbytes(obj)
        self._sizes[path] = size
        if not self.persist and sum(self._sizes[p] for p in self._memory) + size < self.budget / 2:
            self._memory[path] = obj
        else:
            save_torch(path, obj)

    def _load(self, path: Path):
        if path in self._memory:
            return self._memory[path]
        return torch.load(path, weights_only=True, map_location=self.device)

    # ----------------------------------------------------------------- Gram: parameter chunks
    def _load_lazy(self, path: Path):
        """A stored block whose tensors are read from disk only when touched (memory-mapped)."""
        if path in self._memory:
            return self._memory[path]
        return torch.load(path, weights_only=True, mmap=True, map_location=self.device)

    def _row_bytes(self, paths: list[Path]) -> list[list[int]]:
        """Bytes per block and parameter once padded to the longest prompt of ``paths``."""
        shapes = [[[(u.kind, tuple(u.out.shape), u.out.element_size(),
                     None if u.inp is None else (tuple(u.inp.shape), u.inp.element_size()))
                    for u in uses] for uses in state_to_block(self._load_lazy(p)).uses]
                  for p in paths]
        per_block = []
        for k, p in enumerate(paths):
            rows = self._rows_of[p]
            sizes = []
            for index, uses in enumerate(shapes[k]):
                total = 0
                for u, (kind, out, out_item, inp) in enumerate(uses):
                    if kind == "dense":
                        total += rows * out[1] * out_item
                        continue
                    longest = max(s[index][u][1][1] for s in shapes if len(s[index]) > u)
                    width = (1 if kind == "embedding" else out[-1]) * out_item
                    width += 0 if inp is None else inp[0][-1] * inp[1]
                    total += rows * longest * width
                sizes.append(total)
            per_block.append(sizes)
        return per_block

    def _parameter_chunks(self, bytes1: list[list[int]], bytes2: list[list[int]] | None,
                          limit: float) -> list[list[int]]:
        """Consecutive parameters whose factors over all rows (both sides) fit in ``limit``."""
        n_params = len(self.shapes)
        cost = [sum(b[k] for b in bytes1) + (0 if bytes2 is None else sum(b[k] for b in bytes2))
                for k in range(n_params)]
        chunks: list[list[int]] = [[]]
        used = 0
        for k in range(n_params):
            if chunks[-1] and used + cost[k] > limit:
                chunks.append([])
                used = 0
            chunks[-1].append(k)
            used += cost[k]
        return chunks

    @staticmethod
    def _row_groups(sizes: list[int], limit: float) -> list[list[int]]:
        """Consecutive blocks (indices) in groups of at most ``limit`` bytes (one block at least)."""
        groups: list[list[int]] = [[]]
        used = 0
        for k, size in enumerate(sizes):
            if groups[-1] and used + size > limit:
                groups.append([])
                used = 0
            groups[-1].append(k)
            used += size
        return groups

    def _load_rows(self, paths: list[Path], chunk: list[int]) -> BlockFactors:
        """The factors of the chunk's parameters for every row of ``paths``, as one block."""
        keep = set(chunk)
        blocks = []
        for p in paths:
            block = state_to_block(self._load_lazy(p))
            blocks.append(BlockFactors(rows=block.rows, uses=[
                uses if k in keep else [] for k, uses in enumerate(block.uses)]))
        return concat_blocks(blocks)

    def _chunked_gram(self, paths1: list[Path], paths2: list[Path] | None,
                      bar: Progress) -> np.ndarray:
        """Parameter-major: each chunk of parameters' factors for all rows, then their Gram.

        Why: a block-pair loop rebuilds every per-row gradient once per partner block; loading
        one parameter chunk for all rows builds each once and multiplies n-row matrices. Memory:
        the chunk's factors take at most a quarter of the budget (when all rows of even one
        parameter do not fit, its rows are split into groups of an eighth, taken pairwise);
        per-row gradients are built one band at a time (gram.py). The Gram accumulated so
        far is written after every chunk, so an interrupted run resumes at the next chunk.
        """
        symmetric = paths2 is None
        offsets1 = self._offsets(paths1)
        offsets2 = offsets1 if symmetric else self._offsets(cast(list[Path], paths2))
        bytes1 = self._row_bytes(paths1)
        bytes2 = None if symmetric else self._row_bytes(cast(list[Path], paths2))
        chunks = self._parameter_chunks(bytes1, bytes2, self.budget / 4)
        layout = {"strategy": "parameter-chunks", "chunks": chunks,
                  "rows": [p.name for p in paths1],
                  "cols": None if symmetric else [p.name for p in cast(list[Path], paths2)]}
        state_path, kernel_path = self.work / CHUNK_GRAM_STATE, self.work / CHUNK_GRAM_MATRIX
        saved, kernel = load_gram_progress(kernel_path, state_path, layout,
                                           (offsets1[-1], offsets2[-1]))
        done: set[int] = set(saved)
        task = bar.add_task(f"eNTK exact{self.executor.label}: Gram ({len(chunks)} parameter "
                            "chunks)", total=len(chunks))
        for c, chunk in enumerate(chunks):
            if c not in done:
                self._chunk_gram(kernel, chunk, paths1, paths2, bytes1, bytes2, offsets1,
                                 offsets2)
                done.add(c)
                save_gram_progress(kernel, kernel_path, state_path, layout, done)
                self._finished("gram", c)
            bar.advance(task)
        return kernel

    def _chunk_gram(self, kernel: np.ndarray, chunk: list[int], paths1: list[Path],
                    paths2: list[Path] | None, bytes1, bytes2, offsets1, offsets2) -> None:
        """Add one parameter chunk's Gram to ``kernel`` (in place)."""
        sizes1 = [sum(b[k] for k in chunk) for b in bytes1]
        sizes2 = None if bytes2 is None else [sum(b[k] for k in chunk) for b in bytes2]
        whole = sum(sizes1) + (0 if sizes2 is None else sum(sizes2)) <= self.budget / 4
        limit = float("inf") if whole else self.budget / 8
        rows1 = self._row_groups(sizes1, limit)
        rows2 = rows1 if sizes2 is None else self._row_groups(sizes2, limit)
        for gi, group_i in enumerate(rows1):
            block_i = self._load_rows([paths1[k] for k in group_i], chunk)
            r0, r1 = offsets1[group_i[0]], offsets1[group_i[-1] + 1]
            for group_j in rows2[gi if paths2 is None else 0:]:
                same = paths2 is None and group_j is group_i
                block_j = None if same else self._load_rows(
                    [(paths1 if paths2 is None else paths2)[k] for k in group_j], chunk)
                part = gram_of_blocks(block_i, block_j, self.shapes, self.engine.linear_path,
                                      self.gram_stats, self.engine.gram_dtype).cpu().numpy()
                c0, c1 = offsets2[group_j[0]], offsets2[group_j[-1] + 1]
                kernel[r0:r1, c0:c1] += part
                if paths2 is None and not same:
                    kernel[c0:c1, r0:r1] += part.T
                del block_j

    # ----------------------------------------------------------------- Gram: block pairs
    def _pair_gram(self, paths1: list[Path], paths2: list[Path] | None,
                   bar: Progress) -> np.ndarray:
        """Every pair of blocks one ``gram`` call of the executor; resumable after each pair."""
        symmetric = paths2 is None
        paths2 = paths1 if paths2 is None else paths2
        offsets1 = self._offsets(paths1)
        offsets2 = offsets1 if symmetric else self._offsets(paths2)
        pairs = [(i, j) for i in range(len(paths1))
                 for j in range(i if symmetric else 0, len(paths2))]
        layout = {"rows": [p.name for p in paths1],
                  "cols": None if symmetric else [p.name for p in paths2]}
        state_path, kernel_path = self.work / PAIR_GRAM_STATE, self.work / PAIR_GRAM_MATRIX
        saved, kernel = load_gram_progress(kernel_path, state_path, layout,
                                           (offsets1[-1], offsets2[-1]))
        done: set[tuple[int, int]] = {tuple(p) for p in saved}
        task = bar.add_task(f"eNTK exact{self.executor.label}: Gram blocks ({len(pairs)} "
                            "pairs)", total=len(pairs))
        bar.advance(task, len(done))
        shared: dict[Path, Any] = {}

        def handle(path: Path):
            if path not in shared:  # each block goes to the workers once, not once per pair
                shared[path] = self.executor.share(self._load(path))
            return shared[path]

        jobs = [((i, j), (handle(paths1[i]),
                          None if symmetric and i == j else handle(paths2[j])))
                for i, j in pairs if (i, j) not in done]
        for (i, j), (part, stats) in self.executor.map_blocks("gram", jobs):
            r0, r1, c0, c1 = offsets1[i], offsets1[i + 1], offsets2[j], offsets2[j + 1]
            kernel[r0:r1, c0:c1] = part
            if symmetric and i != j:
                kernel[c0:c1, r0:r1] = part.T
            for name, value in stats.items():
                self.gram_stats[name] = self.gram_stats.get(name, 0.0) + value
            done.add((i, j))
            save_gram_progress(kernel, kernel_path, state_path, layout, done)
            self._finished("gram", (i, j))
            bar.advance(task)
        return kernel

    def _offsets(self, paths: list[Path]) -> list[int]:
        return [0, *np.cumsum([self._rows_of[p] for p in paths]).tolist()]

    # ----------------------------------------------------------------- entry
    def compute(self, examples: Sequence, examples2: Sequence | None) -> tuple[np.ndarray, dict]:
        """The kernel (rows example-major, C outputs per example) and a few run details."""
        self.work.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest(len(examples), None if examples2 is None else len(examples2))
        self.executor.start(self.engine, self.work)
        try:
            # the engine allocates with the default device: make it the model's (CUDA or CPU)
            with (torch.device(self.device), only_selected_trainable(self.model, self.selected),
                  progress_bar(transient=True, remaining=True, disable=not self.show) as bar):
                started = time.perf_counter()
                paths1 = self._blocks("x", examples, manifest, bar)
                paths2 = (None if examples2 is None
                          else self._blocks("x2", examples2, manifest, bar))
                captured = time.perf_counter()
                self.n_outputs = manifest["n_outputs"]
                if self.mode == "sketch":
                    kernel = self._sketch_gram(paths1, paths2)
                else:
                    counts = [(paths1, len(examples))] + (
                        [] if paths2 is None else [(paths2, len(cast(Sequence, examples2)))])
                    for paths, n in counts:
                        for k, p in enumerate(paths):
                            ex = min(self.block_size, n - k * self.block_size)
                            self._rows_of[p] = ex * self.n_outputs
                    plan = (self._pair_gram if self.executor.gram_plan == "block-pairs"
                            else self._chunked_gram)
                    kernel = plan(paths1, paths2, bar)
        finally:
            self.executor.close()
        details = {"engine": manifest["engine"], "note": manifest["note"],
                   "block_size": self.block_size, "linear_path": self.engine.linear_path,
                   "batched_output": self.engine.batched,
                   "seconds_gradients": captured - started,
                   "seconds_gram": time.perf_counter() - captured,
                   "seconds_capture": self.seconds["capture"],
                   "seconds_project_or_store": self.seconds["project_or_store"],
                   **self.gram_stats}
        executor = self.executor.describe()
        if executor is not None:
            details["executor"] = executor
        return kernel, details

    def _sketch_gram(self, paths1: list[Path], paths2: list[Path] | None) -> np.ndarray:
        """The sketched kernel ``S1 S2^T``, keeping the rows' squared norms for the error."""
        s1 = torch.cat([self._load(p) for p in paths1])
        s2 = s1 if paths2 is None else torch.cat([self._load(p) for p in paths2])
        kernel = (s1 @ s2.T).cpu().numpy()
        self.sketch_diagonal = (s1 * s1).sum(1).cpu().numpy()
        self.sketch_diagonal2 = (s2 * s2).sum(1).cpu().numpy()
        if paths2 is None:
            kernel = (kernel + kernel.T) / 2
        return kernel
