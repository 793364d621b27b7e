"""One kernel computation: blocks of examples -> factors (or sketches) on disk -> Gram.

Everything finished is written to the work directory as it completes (one file per block of
examples, then the Gram accumulated so far after each chunk of parameters), so a run that is
interrupted resumes from its finished blocks. Memory, the budget's share of it: without a cache
entry capture blocks stay in memory up to half the budget (the rest go to disk); the exact Gram
then loads one chunk of parameters for all rows at a time (at most a quarter of the budget,
memory-mapped from disk), builds per-row gradients one band at a time (about 64 MiB) and
multiplies; a kernel of n x n float64 is held as well.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from transferscope.core.cache import atomic_write_bytes
from transferscope.ntk.engine_capture import (
    BlockFactors,
    CaptureUnsupported,
    capture_block,
    capture_block_loop,
    only_selected_trainable,
    validate_capture,
)
from transferscope.ntk.engine_gram import concat_blocks, gram_of_blocks
from transferscope.ntk.engine_sketch import sketch_block

_MANIFEST = "manifest.json"


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=True)


def _save_torch(path: Path, obj) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


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


def _block_to_state(block: BlockFactors) -> dict:
    return {"rows": block.rows,
            "uses": [[(u.kind, u.out, u.inp) for u in uses] for uses in block.uses]}


def _state_to_block(state: dict) -> BlockFactors:
    from transferscope.ntk.engine_capture import Use

    return BlockFactors(rows=state["rows"],
                        uses=[[Use(k, o, i) for k, o, i in uses] for uses in state["uses"]])


def save_gram_progress(kernel: np.ndarray, kernel_path: Path, state_path: Path, layout,
                       done: set) -> None:
    """The running Gram and what of it is finished, written atomically (the resume point)."""
    buf = io.BytesIO()
    np.save(buf, kernel)
    atomic_write_bytes(kernel_path, buf.getvalue())
    atomic_write_bytes(state_path, json.dumps({"layout": layout, "done": sorted(done)}).encode())


class KernelRun:
    """Holds the settings of one computation; :meth:`compute` does it (resumably)."""

    def __init__(self, model, output_fn, selected, mode: str, work: Path, budget_gb: float,
                 block_size: int, sketch_dim: int, seed: int, linear_path: str, engine: str,
                 progress: bool, persist: bool = True, gram_dtype: str = "auto"):
        self.model, self.output_fn, self.selected = model, output_fn, selected
        self.mode, self.work, self.budget = mode, Path(work), budget_gb * 2**30
        self.block_size, self.sketch_dim, self.seed = block_size, sketch_dim, seed
        self.linear_path, self.engine, self.show = linear_path, engine, progress
        self.batched = bool(getattr(output_fn, "batched", False))
        self.shapes = [p.shape for _, p in selected]
        self.n_outputs = 1
        self.sketch_diagonal: np.ndarray | None = None
        self.sketch_diagonal2: np.ndarray | None = None
        self._tables: dict = {}
        self.gram_stats: dict = {}
        self.gram_dtype = gram_dtype
        # without a cache entry to resume, blocks stay in memory while they fit half the budget
        self.persist = persist
        self._memory: dict[Path, object] = {}
        self._sizes: dict[Path, int] = {}
        # where the gradient phase's time goes: forward/backward vs sketching (or storing) factors
        self.seconds = {"capture": 0.0, "project_or_store": 0.0}

    # ----------------------------------------------------------------- manifest / resume
    def _manifest(self, n1: int, n2: int | None) -> dict:
        settings = {"n1": n1, "n2": n2, "block_size": self.block_size, "mode": self.mode,
                    "sketch_dim": self.sketch_dim, "seed": self.seed}
        path = self.work / _MANIFEST
        if path.exists():
            saved = json.loads(path.read_text("utf-8"))
            if saved.get("settings") == settings:
                return saved
            for stale in self.work.iterdir():  # different settings: the old blocks do not apply
                stale.unlink()
        manifest = {"settings": settings, "engine": None, "n_outputs": None, "note": None}
        self._write_manifest(manifest)
        return manifest

    def _write_manifest(self, manifest: dict) -> None:
        atomic_write_bytes(self.work / _MANIFEST, json.dumps(manifest, indent=1).encode())

    # ----------------------------------------------------------------- capture phase
    def _capture(self, examples: Sequence, manifest: dict, check: bool) -> BlockFactors:
        engine = manifest["engine"] or ("loop" if self.engine == "loop" else "hooks")
        if engine == "hooks":
            # the check against plain autograd costs a second backward: run it on two examples
            probe = examples[:2] if check and len(examples) > 2 else examples
            try:
                block, reference = capture_block(self.model, self.output_fn, probe,
                                                 self.selected, self.batched, check=check)
                problem = validate_capture(block, reference, self.selected) if check else None
                if probe is not examples and not problem:
                    block, _ = capture_block(self.model, self.output_fn, examples,
                                             self.selected, self.batched)
            except CaptureUnsupported as exc:
                if self.engine == "hooks":
                    raise
                manifest["note"] = f"hooks unsupported ({exc}); per-example loop used"
                engine = "loop"
            else:
                if problem and self.engine == "hooks":
                    raise RuntimeError(f"hook capture disagrees with autograd: {problem}")
                if problem:
                    manifest["note"] = f"{problem}; per-example loop used"
                    engine = "loop"
        if engine == "loop":
            block = capture_block_loop(self.model, self.output_fn, examples, self.selected,
                                       self.batched)
        if manifest["engine"] is None:
            manifest["engine"] = engine
            manifest["n_outputs"] = block.rows // len(examples)
            self._write_manifest(manifest)
        return block

    def _blocks(self, tag: str, examples: Sequence, manifest: dict, bar: Progress) -> list[Path]:
        n = len(examples)
        starts = list(range(0, n, self.block_size))
        task = bar.add_task(f"eNTK {self.mode}: gradients ({tag})", total=len(starts))
        paths = []
        for k, start in enumerate(starts):
            path = self.work / f"{tag}-{k:05d}.pt"
            paths.append(path)
            if not path.exists() and path not in self._memory:
                chunk = examples[start:start + self.block_size]
                started = time.perf_counter()
                block = self._capture(chunk, manifest, check=manifest["engine"] is None)
                captured = time.perf_counter()
                self.seconds["capture"] += captured - started
                if self.mode == "sketch":
                    self._store(path, sketch_block(block, self.shapes, self.sketch_dim,
                                                   self.seed, self._tables))
                else:
                    self._store(path, _block_to_state(block))
                self.seconds["project_or_store"] += time.perf_counter() - captured
            bar.advance(task)
        return paths

    def _store(self, path: Path, obj) -> None:
        size = _nbytes(obj)
        self._sizes[path] = size
        if not self.persist and sum(self._sizes[p] for p in self._memory) + size < self.budget / 2:
            self._memory[path] = obj
        else:
            _save_torch(path, obj)

    def _load(self, path: Path):
        if path in self._memory:
            return self._memory[path]
        return torch.load(path, weights_only=True)

    # ----------------------------------------------------------------- Gram phase
    def _super_blocks(self, paths: list[Path]) -> list[list[Path]]:
        """One capture block per group: the local Gram regroups by parameter (``_exact_gram``)."""
        return [[p] for p in paths]

    def _load_lazy(self, path: Path):
        """A stored block whose tensors are read from disk only when touched (memory-mapped)."""
        if path in self._memory:
            return self._memory[path]
        return torch.load(path, weights_only=True, mmap=True)

    def _row_bytes(self, paths: list[Path]) -> list[list[int]]:
        """Bytes per block and parameter once padded to the longest prompt of ``paths``."""
        shapes = [[[(u.kind, tuple(u.out.shape), u.out.element_size(),
                     None if u.inp is None else (tuple(u.inp.shape), u.inp.element_size()))
                    for u in uses] for uses in _state_to_block(self._load_lazy(p)).uses]
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
            block = _state_to_block(self._load_lazy(p))
            blocks.append(BlockFactors(rows=block.rows, uses=[
                uses if k in keep else [] for k, uses in enumerate(block.uses)]))
        return concat_blocks(blocks)

    def _exact_gram(self, groups1, groups2, symmetric: bool, bar: Progress) -> np.ndarray:
        """Parameter-major: each chunk of parameters' factors for all rows, then their Gram.

        Why: a block-pair loop rebuilds every per-row gradient once per partner block; loading
        one parameter chunk for all rows builds each once and multiplies n-row matrices. Memory:
        the chunk's factors take at most a quarter of the budget (when all rows of even one
        parameter do not fit, its rows are split into groups of an eighth, taken pairwise);
        per-row gradients are built one band at a time (engine_gram). The Gram accumulated so
        far is written after every chunk, so an interrupted run resumes at the next chunk.
        """
        paths1 = [p for g in groups1 for p in g]
        paths2 = paths1 if symmetric else [p for g in groups2 for p in g]
        offsets1 = [0, *np.cumsum([self._rows_of[p] for p in paths1]).tolist()]
        offsets2 = offsets1 if symmetric else [
            0, *np.cumsum([self._rows_of[p] for p in paths2]).tolist()]
        bytes1 = self._row_bytes(paths1)
        bytes2 = None if symmetric else self._row_bytes(paths2)
        chunks = self._parameter_chunks(bytes1, bytes2, self.budget / 4)
        layout = {"strategy": "parameter-chunks", "chunks": chunks,
                  "rows": [p.name for p in paths1],
                  "cols": None if symmetric else [p.name for p in paths2]}
        state_path, kernel_path = self.work / "gram.json", self.work / "gram.npy"
        done: set[int] = set()
        kernel = np.zeros((offsets1[-1], offsets2[-1]))
        if state_path.exists() and kernel_path.exists():
            saved = json.loads(state_path.read_text("utf-8"))
            if saved.get("layout") == layout:
                done = set(saved["done"])
                kernel = np.load(kernel_path)
        task = bar.add_task(f"eNTK exact: Gram ({len(chunks)} parameter chunks)",
                            total=len(chunks))
        for c, chunk in enumerate(chunks):
            if c not in done:
                self._chunk_gram(kernel, chunk, paths1, None if symmetric else paths2,
                                 bytes1, bytes2, offsets1, offsets2)
                done.add(c)
                save_gram_progress(kernel, kernel_path, state_path, layout, done)
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
                part = gram_of_blocks(block_i, block_j, self.shapes, self.linear_path,
                                      self.gram_stats, self.gram_dtype).numpy()
                c0, c1 = offsets2[group_j[0]], offsets2[group_j[-1] + 1]
                kernel[r0:r1, c0:c1] += part
                if paths2 is None and not same:
                    kernel[c0:c1, r0:r1] += part.T
                del block_j

    def _offsets(self, groups: list[list[Path]]) -> list[int]:
        sizes = [sum(self._rows_of[p] for p in group) for group in groups]
        return [0, *np.cumsum(sizes).tolist()]

    # ----------------------------------------------------------------- entry
    def compute(self, examples: Sequence, examples2: Sequence | None) -> tuple[np.ndarray, dict]:
        """The kernel (rows example-major, C outputs per example) and a few run details."""
        self.work.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest(len(examples), None if examples2 is None else len(examples2))
        with only_selected_trainable(self.model, self.selected), _progress(self.show) as bar:
            started = time.perf_counter()
            paths1 = self._blocks("x", examples, manifest, bar)
            paths2 = None if examples2 is None else self._blocks("x2", examples2, manifest, bar)
            captured = time.perf_counter()
            self.n_outputs = manifest["n_outputs"]
            if self.mode == "sketch":
                s1 = torch.cat([self._load(p) for p in paths1])
                s2 = s1 if paths2 is None else torch.cat(
                    [self._load(p) for p in paths2])
                kernel = (s1 @ s2.T).numpy()
                self.sketch_diagonal = (s1 * s1).sum(1).numpy()
                self.sketch_diagonal2 = (s2 * s2).sum(1).numpy()
                if paths2 is None:
                    kernel = (kernel + kernel.T) / 2
            else:
                self._rows_of = {}
                counts = [(paths1, len(examples))] + (
                    [] if paths2 is None else [(paths2, len(examples2))])
                for paths, n in counts:
                    for k, p in enumerate(paths):
                        ex = min(self.block_size, n - k * self.block_size)
                        self._rows_of[p] = ex * self.n_outputs
                groups1 = self._super_blocks(paths1)
                groups2 = groups1 if paths2 is None else self._super_blocks(paths2)
                kernel = self._exact_gram(groups1, groups2, paths2 is None, bar)
        details = {"engine": manifest["engine"], "note": manifest["note"],
                   "block_size": self.block_size, "linear_path": self.linear_path,
                   "batched_output": self.batched,
                   "seconds_gradients": captured - started,
                   "seconds_gram": time.perf_counter() - captured,
                   "seconds_capture": self.seconds["capture"],
                   "seconds_project_or_store": self.seconds["project_or_store"],
                   **self.gram_stats}
        return kernel, details
