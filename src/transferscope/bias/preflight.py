"""Every ``bias`` operation's files checked, and its output claimed, before a model opens.

One function per operation, called first by the library function that runs it
(:func:`~transferscope.bias.run_evaluation`, :func:`~transferscope.bias.debias`, ...), so the
command line and a library caller get the same checks: a record or cache file that is not one,
or an output that cannot be written, costs a second, not a model load and an hour of requests
(and two processes never write one output). The settings themselves are checked by the
configs (``bias.config``) when they are built.
"""

from __future__ import annotations

from pathlib import Path

from transferscope.core.checks import option_error
from transferscope.core.outdir import check_out_file, claim_output

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


def cache_file(cache: bool | str | Path | None) -> Path | None:
    """The response cache file a run was given (``BackendOptions.cache``), if it names one."""
    return Path(cache) if isinstance(cache, str | Path) else None


def run(out: Path | None, *, record: str | Path | None,
        cache: bool | str | Path | None) -> None:
    """``bias run``: the record and the cache (the settings are checked by
    :class:`~transferscope.bias.config.RunConfig`), then the run folder (when written)."""
    check_record(Path(record) if record is not None else None)
    check_cache(cache_file(cache))
    if out is not None:
        claim_output(out)


def debias(out: Path, *, record: str | Path | None, cache: bool | str | Path | None) -> None:
    """``bias debias``: what ``run`` checks (the settings are checked by
    :class:`~transferscope.bias.config.DebiasConfig`), then the output folder."""
    run(out, record=record, cache=cache)


def calibrate(out: Path | None, *, record: str | Path | None) -> None:
    """``bias calibrate``: the record, then the output folder (the settings are checked by
    :class:`~transferscope.bias.config.CalibrateConfig`)."""
    check_record(Path(record) if record is not None else None)
    if out is not None:
        claim_output(out)


def run_folders(run_dirs: list[Path], out: Path, *, at_least: int = 1) -> None:
    """``bias report`` and ``bias compare``: the run folders exist (their files are checked,
    one line each, when read), then the output folder."""
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
    claim_output(out, inputs=run_dirs)


def build_data(raw: Path, out: Path | None) -> None:
    """``bias build-data``: the raw folder exists, then the record folder (when given)."""
    if not raw.is_dir():
        raise option_error("--raw", str(raw), "a folder of raw UNSC records (vetoes/, "
                           "meetings/, resolutions_en/)")
    if out is not None:
        claim_output(out, inputs=[raw])


def items_file(out: Path) -> None:
    """``bias import-unbench``: the items file to write (claimed) before the checkout is
    read."""
    claim_output(out, "--out", is_dir=False)
