"""Every ``bias`` command's options checked, and its ``--out`` claimed, before a model opens.

One function per command, called first by the command line: a bad setting, a record or cache
file that is not one, or an output that cannot be written costs a second, not a model load and
an hour of requests (and two processes never write one ``--out``).
"""

from __future__ import annotations

from pathlib import Path

from transferscope.core.checks import (
    check_int,
    check_names,
    check_number,
    check_seed,
    option_error,
)
from transferscope.core.outdir import check_out_file, claim_output

# Bounds past which a setting is a typo, not a plan: retries that never end, a thread per
# request, a request that may hang for a day, bootstraps that take hours.
MAX_RETRIES = 20
MAX_CONCURRENCY = 256
MAX_TIMEOUT_S = 3600.0
MAX_RESAMPLES = 1_000_000
SQLITE_MAGIC = b"SQLite format 3\x00"


def check_record(record: Path | None) -> None:
    """``--record``: a folder (its files are checked, one line each, when it is read)."""
    if record is not None and not record.is_dir():
        raise option_error("--record", str(record), "a record folder written by `bias "
                           "build-data`")


def check_cache(cache: Path | None) -> None:
    """``--cache``: a new file in a writable folder, or an SQLite file (an empty one too)."""
    if cache is None:
        return
    check_out_file(cache, "--cache")
    if cache.is_file() and cache.stat().st_size:
        with cache.open("rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise option_error("--cache", str(cache), "an SQLite response cache written by "
                                   "transferscope, or a new file (this one is something else)")


def _requests(tests: str, drafts_per_nation: int | None, concurrency: int, max_retries: int | None,
              timeout: float | None, seed: int, n_boot: int, record: Path | None,
              cache: Path | None, executor: str, workers: int | None) -> None:
    from transferscope.bias.probes.outcomes import OUTCOME_TESTS
    from transferscope.bias.probes.registry import PROBES

    # adoption and coauthor: items files only (the run says so where --items is missing)
    check_names("--tests", tests.lower(), allowed=(*PROBES, *OUTCOME_TESTS), what="test names")
    check_int("--drafts-per-nation", drafts_per_nation, 1)
    check_int("--concurrency", concurrency, 1, MAX_CONCURRENCY)
    check_int("--max-retries", max_retries, 0, MAX_RETRIES)
    check_number("--timeout", timeout, 0, MAX_TIMEOUT_S, low_open=True)
    check_seed("--seed", seed)
    check_int("--n-boot", n_boot, 10, MAX_RESAMPLES)
    if executor not in ("local", "ray"):
        raise option_error("--executor", executor, "'local' or 'ray'")
    check_int("--workers", workers, 1)
    check_record(record)
    check_cache(cache)


def run(out: Path, *, tests: str, drafts_per_nation: int | None, concurrency: int,
        max_retries: int, timeout: float, seed: int, n_boot: int, record: Path | None,
        cache: Path | None, executor: str, workers: int | None, adjust: str = "holm") -> None:
    """``bias run``: tests, sizes, request limits, record and cache, then the run folder."""
    from transferscope.core.stats import ADJUSTMENTS

    if adjust not in ADJUSTMENTS:
        raise option_error("--adjust", adjust, "'holm' or 'bh'")
    _requests(tests, drafts_per_nation, concurrency, max_retries, timeout, seed, n_boot, record, cache,
              executor, workers)
    claim_output(out)


def debias(out: Path, *, method: str, tests: str, drafts_per_nation: int | None, top_k: int,
           rounds: int, memory: int, concurrency: int, seed: int, n_boot: int, paired_boot: int,
           record: Path | None, cache: Path | None, executor: str, workers: int | None) -> None:
    """``bias debias``: what ``run`` checks, the method's settings, then the output folder."""
    from transferscope.bias.debias.pipeline import METHODS

    if method not in METHODS:
        raise option_error("--method", method, " or ".join(METHODS))
    _requests(tests, drafts_per_nation, concurrency, None, None, seed, n_boot, record, cache, executor,
              workers)
    check_int("--top-k", top_k, 1, 1000)
    check_int("--rounds", rounds, 0, MAX_RETRIES)
    check_int("--memory", memory, 0, 1000)
    check_int("--paired-boot", paired_boot, 10, MAX_RESAMPLES)
    claim_output(out)


def calibrate(out: Path | None, *, tests: str, seed: int, n_boot: int, power_reps: int,
              coverage_seeds: int, record: Path | None) -> None:
    """``bias calibrate``: tests, resamples, replications, record, then the output folder."""
    from transferscope.bias.probes.registry import PROBES

    check_names("--tests", tests.lower(), allowed=tuple(PROBES), what="test names")
    check_seed("--seed", seed)
    check_int("--n-boot", n_boot, 10, MAX_RESAMPLES)
    check_int("--power-reps", power_reps, 0, 100_000)
    check_int("--coverage-seeds", coverage_seeds, 0, 100_000)
    check_record(record)
    if out is not None:
        claim_output(out)


def run_folders(run_dirs: list[Path], out: Path, *, at_least: int = 1,
                n_boot: int | None = None, seed: int | None = None) -> None:
    """``bias report`` and ``bias compare``: the run folders exist (their files are checked,
    one line each, when read), resamples and seed, then the output folder."""
    if len(run_dirs) < at_least:
        raise option_error("RUN_DIRS", " ".join(map(str, run_dirs)),
                           f"at least {at_least} run folders")
    seen: dict[str, Path] = {}
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise option_error("RUN_DIRS", str(run_dir), "a folder written by `transferscope "
                               "bias run` (or a debias baseline/, debiased/ folder)")
        real = str(run_dir.resolve())
        if real in seen:
            raise option_error("RUN_DIRS", str(run_dir), f"each run once (it is also given as "
                               f"{seen[real]})")
        seen[real] = run_dir
    if (out / "run.json").exists():
        raise option_error("--out", str(out), "a new folder or a report folder (this one holds "
                           "a run: run.json)")
    check_int("--n-boot", n_boot, 10, MAX_RESAMPLES)
    check_seed("--seed", seed)
    claim_output(out, inputs=run_dirs)


def build_data(raw: Path, out: Path | None) -> None:
    """``bias build-data``: the raw folder exists, then the record folder (when given)."""
    if not raw.is_dir():
        raise option_error("--raw", str(raw), "a folder of raw UNSC records (vetoes/, "
                           "meetings/, resolutions_en/)")
    if out is not None:
        claim_output(out, inputs=[raw])


def items_file(out: Path) -> None:
    """``bias import-unbench``: the items file to write (claimed)."""
    claim_output(out, "--out", is_dir=False)
