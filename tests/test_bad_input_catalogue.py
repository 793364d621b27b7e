"""The bad-input catalogue (#20): every bad option, damaged file and unusable output a tester
tried, as one table. Each row runs the real command line (``transferscope.cli.main``, in
process) and must end with the row's exit code and exactly one line on stderr, ``error: ...``,
holding the row's fragment (the option or file it names and what it says), with no traceback
anywhere and no ``--out`` lock left behind. The files each row reads are built once per module.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferscope import cli

SHIPPED_RECORD = Path(cli.__file__).parent / "bias" / "data" / "unsc"


def invoke(args: list[str]) -> tuple[int, str, str]:
    """``transferscope ARGS`` through the real entry point: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["transferscope", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.argv = saved
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return code, out.getvalue(), err.getvalue()


def _csv(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")


def _run_folder(src: Path, dst: Path, edit=None) -> None:
    shutil.copytree(src, dst)
    if edit is not None:
        edit(dst)


def _record(dst: Path, edit) -> None:
    shutil.copytree(SHIPPED_RECORD, dst)
    edit(dst)


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """Every file the catalogue's rows read: tables, run folders, records, models, kernels."""
    root = tmp_path_factory.mktemp("catalogue")
    mp = pytest.MonkeyPatch()
    mp.setenv("TRANSFERSCOPE_CACHE", str(root / "cache"))
    mp.chdir(root)
    # tables (dino) and labelled texts (ntk)
    _csv(root / "ok.csv", "x,y,d\n1,2,a\n3,4,b\n5,6,b\n7,8,a\n2,3,a\n4,4,b\n")
    _csv(root / "ragged_first.csv", "x,y,d\n1,2,a,9\n3,4,b\n5,6,b\n")
    _csv(root / "ragged_later.csv", "x,y,d\n1,2,a\n3,4,b\n5,6,b,7\n")
    _csv(root / "short_row.csv", "x,y,d\n1,2,a\n3,4\n")
    _csv(root / "dup_header.csv", "x,x,d\n1,2,a\n3,4,b\n")
    _csv(root / "huge.csv", "x,y,d\n1,2,a\n3,4,b\n5,6,b\n1e308,8,a\n2,3,a\n4,4,b\n")
    _csv(root / "huge_target.csv", "x,y,d\n1,2,a\n3,4,b\n5,1e200,b\n7,8,a\n2,3,a\n4,4,b\n")
    _csv(root / "text_text.csv", "text,text\ngood,bad\nfine,awful\n")
    _csv(root / "texts_ragged.csv", "text,label\ngood,1\nbad,0,extra\n")
    _csv(root / "texts_three.csv", "text,label\ngood,1\nbad,0\nmeh,2\n")
    _csv(root / "a_file", "not a folder\n")
    (root / "junk.parquet").write_bytes(b"PAR1 this is not parquet")
    (root / "junk.model").write_bytes(b"\x80\x04garbage that is no model")
    (root / "ok.xlsx").write_bytes(b"")
    (root / "a_folder").mkdir()
    (root / "not_sqlite.db").write_text("id,answer\n1,2\n", "utf-8")
    # a fitted DINO model (3 Adam steps: the model only has to load)
    code, _, err = invoke(["dino", "fit", "ok.csv", "--features", "x", "--target", "y",
                           "--domain", "d", "--target-domain", "b", "--out", "model.dino",
                           "--steps", "3"])
    assert code == 0, err
    # a real bias run folder (a null answerer) and damaged copies of it
    code, _, err = invoke(["bias", "run", "--out", "run", "--model", "null:constant",
                           "--tests", "directqa", "--drafts-per-nation", "6", "--n-boot", "10"])
    assert code == 0, err
    run = root / "run"
    _run_folder(run, root / "run_no_headline", lambda p: (p / "scores.csv").write_text(
        (p / "scores.csv").read_text().replace(",headline,", ",headlinx,", 1)))
    _run_folder(run, root / "run_text_value", lambda p: _replace_cell(p / "scores.csv", 1,
                                                                     "value", "abc"))
    _run_folder(run, root / "run_ragged_scores", lambda p: (p / "scores.csv").write_text(
        (p / "scores.csv").read_text() + "1,2\n"))
    _run_folder(run, root / "run_bad_json", lambda p: (p / "run.json").write_text("{oops"))
    _run_folder(run, root / "run_no_config", lambda p: (p / "run.json").write_text(
        '{"backend": "x", "config": {}, "stats": {}}'))
    _run_folder(run, root / "run_json_list", lambda p: (p / "run.json").write_text("[1, 2]"))
    _run_folder(run, root / "run_bad_answers", lambda p: (p / "answers.jsonl").write_text(
        (p / "answers.jsonl").read_text() + "not json\n"))
    _run_folder(run, root / "run_answer_no_id", lambda p: (p / "answers.jsonl").write_text(
        '{"choice": 1, "parsed": true, "reply": "x"}\n'))
    _run_folder(run, root / "run_no_scores", lambda p: (p / "scores.csv").unlink())
    # damaged UNSC records
    _record(root / "rec_junk_parquet", lambda p: (p / "drafts.parquet").write_bytes(b"junk"))
    _record(root / "rec_no_date", lambda p: pd.read_parquet(p / "drafts.parquet").drop(
        columns=["date"]).to_parquet(p / "drafts.parquet"))
    _record(root / "rec_no_votes", lambda p: (p / "p5_votes.parquet").unlink())
    _record(root / "rec_bad_texts", lambda p: (p / "texts.jsonl.gz").write_bytes(
        gzip.compress(b'{"resolution": "1", "text": "a"}\n{broken\n')))
    _record(root / "rec_bad_build", lambda p: (p / "build_report.json").write_text("{"))
    _record(root / "rec_foreign_votes", lambda p: pd.DataFrame({"a": [1]}).to_parquet(
        p / "p5_votes.parquet"))
    # NTK run folders: a valid one (4 examples) and damaged copies
    from transferscope.ntk import rundir

    rundir.save_kernel_run(root / "kr", np.eye(4) + 0.5, np.zeros(4),
                           np.array([1.0, -1.0, 1.0, -1.0]), ["a", "b", "c", "d"],
                           {"model": "test"})
    _run_folder(root / "kr", root / "kr_bad_npy",
                lambda p: (p / "kernel.npy").write_bytes(b"\x93NUMPYgarbage"))
    _run_folder(root / "kr", root / "kr_pickled",
                lambda p: np.save(p / "f0.npy", np.array([{"a": 1}] * 4, dtype=object),
                                  allow_pickle=True))
    _run_folder(root / "kr", root / "kr_shape",
                lambda p: np.save(p / "kernel.npy", np.eye(3)))
    _run_folder(root / "kr", root / "kr_labels",
                lambda p: np.save(p / "labels.npy", np.array([0.0, 1.0, 2.0, 3.0])))
    _run_folder(root / "kr", root / "kr_nan",
                lambda p: np.save(p / "kernel.npy", np.full((4, 4), np.nan)))
    _run_folder(root / "kr", root / "kr_bad_meta", lambda p: (p / "meta.json").write_text("{"))
    _run_folder(root / "kr", root / "kr_no_f0", lambda p: (p / "f0.npy").unlink())
    (root / "not_a_model_dir").mkdir()
    (root / "not_a_model_dir" / "readme.txt").write_text("hello")
    yield root
    mp.undo()


def _replace_cell(path: Path, row: int, column: str, value: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


FIT = "dino fit ok.csv --features x --target y --domain d --target-domain b --out m.dino"
DATA = "--template '{text} is' --label-words good,bad"
CASES = [
    # ---------------------------------------------------------------- usage (typer's click)
    ("no-such-group", "nosuch", 2, "No such command 'nosuch'"),
    ("ntk-unknown-option", "ntk kernel --bogus", 2, "No such option: --bogus"),
    ("ntk-missing-out", "ntk kernel", 2, "Missing option '--out'"),
    ("ntk-n-not-a-number", "ntk kernel --out o --n abc", 2, "'--n'"),
    ("bias-drafts-0", "bias run --out o --drafts-per-nation 0", 2, "'--drafts-per-nation'"),
    ("bias-seed-not-a-number", "bias run --out o --seed abc", 2, "'--seed'"),
    ("bias-concurrency-0", "bias run --out o --concurrency 0", 2, "'--concurrency'"),
    ("models-unknown-command", "models bogus", 2, "No such command 'bogus'"),
    ("doctor-unknown-option", "doctor --bogus", 2, "No such option: --bogus"),
    # ---------------------------------------------------------------- ntk options
    ("ntk-n-0", "ntk kernel --out o --n 0", 2, "--n = 0: expected"),
    ("ntk-params-unknown", "ntk kernel --out o --params bogus", 2, "--params = 'bogus'"),
    ("ntk-params-last-0", "ntk kernel --out o --params last-0", 2, "--params = 'last-0'"),
    ("ntk-sketch-dim-0", "ntk kernel --out o --mode sketch --sketch-dim 0", 2,
     "--sketch-dim = 0"),
    ("ntk-memory-negative", "ntk kernel --out o --memory-gb -1", 2, "--memory-gb = -1.0"),
    ("ntk-memory-nan", "ntk kernel --out o --memory-gb nan", 2, "--memory-gb = nan"),
    ("ntk-seed-negative", "ntk kernel --out o --seed -1", 2, "--seed = -1"),
    ("ntk-max-tokens-0", "ntk kernel --out o --max-tokens 0", 2, "--max-tokens = 0"),
    ("ntk-mode-unknown", "ntk kernel --out o --mode fast", 2, "--mode = 'fast'"),
    ("ntk-out-is-file", "ntk kernel --out a_file", 2, "a_file: is a file"),
    ("ntk-out-under-file", "ntk kernel --out a_file/run", 2, "a_file is a file"),
    ("ntk-task-unknown", "ntk kernel --out o --task nope", 2, "'nope'"),
    ("ntk-data-missing", f"ntk kernel --out o --data nosuch.csv {DATA}", 2, "nosuch.csv"),
    ("ntk-data-no-template", "ntk kernel --out o --data ok.csv", 2, "--template"),
    ("ntk-header-text-text", f"ntk kernel --out o --data text_text.csv {DATA}", 2,
     "text_text.csv: header: column 'text' appears 2 times"),
    ("ntk-data-ragged", f"ntk kernel --out o --data texts_ragged.csv {DATA}", 2,
     "texts_ragged.csv: line 3: 3 fields"),
    ("ntk-data-three-labels", f"ntk kernel --out o --data texts_three.csv {DATA}", 2,
     "3 distinct labels"),
    ("ntk-label-words-one", "ntk kernel --out o --label-words good", 2, "--label-words"),
    ("ntk-finetune-n-test-0", "ntk finetune --out o --n-test 0", 2, "--n-test = 0"),
    ("ntk-finetune-steps-0", "ntk finetune --out o --steps 0", 2, "--steps = 0"),
    ("ntk-finetune-steps-huge", "ntk finetune --out o --steps 1000000000", 2,
     "--steps = 1000000000"),
    ("ntk-finetune-lr-fraction", "ntk finetune --out o --lr-fraction 2", 2, "--lr-fraction"),
    ("ntk-finetune-loss", "ntk finetune --out o --loss hinge", 2, "--loss = 'hinge'"),
    ("ntk-finetune-batch-0", "ntk finetune --out o --batch-size 0", 2, "--batch-size = 0"),
    ("ntk-rates-one-size", "ntk rates --out o --sizes 8", 2, "--sizes = '8'"),
    ("ntk-rates-size-text", "ntk rates --out o --sizes 8,x", 2, "--sizes = '8,x'"),
    ("ntk-rates-seeds-1", "ntk rates --out o --seeds 1", 2, "--seeds = 1"),
    ("ntk-taskvec-one-task", "ntk taskvec --out o --tasks sentiment-words", 2, "--tasks"),
    ("ntk-taskvec-unknown-task", "ntk taskvec --out o --tasks sentiment-words,nope", 2,
     "--tasks = 'nope'"),
    ("ntk-report-out-is-file", "ntk report --out a_file", 2, "a_file: is a file"),
    # ---------------------------------------------------------------- ntk run folders
    ("ntk-spectrum-no-run", "ntk spectrum nosuch", 2, "nosuch: not a directory"),
    ("ntk-spectrum-ci", "ntk spectrum kr --ci 1.5", 2, "--ci = 1.5"),
    ("ntk-spectrum-damaged-npy", "ntk spectrum kr_bad_npy", 2, "kernel.npy: damaged"),
    ("ntk-spectrum-pickled-npy", "ntk spectrum kr_pickled", 2, "f0.npy: damaged"),
    ("ntk-stop-kernel-shape", "ntk stop kr_shape", 2, "kernel.npy: shape (3, 3)"),
    ("ntk-stop-labels", "ntk stop kr_labels", 2, "labels.npy"),
    ("ntk-stop-nan-kernel", "ntk stop kr_nan", 2, "kernel.npy: contains NaN"),
    ("ntk-stop-bad-meta", "ntk stop kr_bad_meta", 2, "meta.json: line 1: not valid JSON"),
    ("ntk-stop-missing-f0", "ntk stop kr_no_f0", 2, "f0.npy is missing"),
    ("ntk-stop-batch-0", "ntk stop kr --batch-size 0", 2, "--batch-size = 0"),
    ("ntk-stop-rule", "ntk stop kr --rule nope", 2, "--rule"),
    ("ntk-stop-lr-negative", "ntk stop kr --lr -1", 2, "--lr"),
    # ---------------------------------------------------------------- dino
    ("dino-features-comma", FIT.replace("--features x", "--features ,"), 2,
     "--features = ','"),
    ("dino-steps-negative", f"{FIT} --steps -1", 2, "--steps = -1"),
    ("dino-steps-huge", f"{FIT} --steps 1000000000", 2, "--steps = 1000000000"),
    ("dino-depth-negative", f"{FIT} --depth -1", 2, "--depth = -1"),
    ("dino-depth-0", f"{FIT} --depth 0", 2, "--depth = 0"),
    ("dino-seed-negative", f"{FIT} --seed -1", 2, "--seed = -1"),
    ("dino-holdout-1", f"{FIT} --holdout 1", 2, "--holdout = 1.0"),
    ("dino-kernel-unknown", f"{FIT} --kernel rbf", 2, "--kernel = 'rbf'"),
    ("dino-impute-unknown", f"{FIT} --impute zero", 2, "--impute = 'zero'"),
    ("dino-categorical-unknown", f"{FIT} --categorical yes", 2, "--categorical = 'yes'"),
    ("dino-lr-0", f"{FIT} --lr 0", 2, "--lr = 0.0"),
    ("dino-w-std-0", f"{FIT} --w-std 0", 2, "--w-std = 0.0"),
    ("dino-target-is-feature", FIT.replace("--target y", "--target x"), 2, "--target = 'x'"),
    ("dino-out-is-folder", FIT.replace("m.dino", "a_folder"), 2, "a_folder: is a folder"),
    ("dino-out-under-file", FIT.replace("m.dino", "a_file/m.dino"), 2, "a_file is a file"),
    ("dino-table-missing", FIT.replace("ok.csv", "nosuch.csv"), 2, "nosuch.csv"),
    ("dino-table-type", FIT.replace("ok.csv", "ok.xlsx"), 2, "file type = '.xlsx'"),
    ("dino-table-junk-parquet", FIT.replace("ok.csv", "junk.parquet"), 2,
     "junk.parquet: contents"),
    ("dino-ragged-first-row", FIT.replace("ok.csv", "ragged_first.csv"), 2,
     "ragged_first.csv: line 2: 4 fields: expected 3"),
    ("dino-ragged-later-row", FIT.replace("ok.csv", "ragged_later.csv"), 2,
     "ragged_later.csv: line 4: 4 fields"),
    ("dino-short-row", FIT.replace("ok.csv", "short_row.csv"), 2,
     "short_row.csv: line 3: 2 fields"),
    ("dino-duplicate-header", FIT.replace("ok.csv", "dup_header.csv"), 2,
     "column 'x' appears 2 times"),
    ("dino-huge-feature", FIT.replace("ok.csv", "huge.csv"), 2,
     "huge.csv: feature column 'x' row 3 = 1e+308"),
    ("dino-huge-target", FIT.replace("ok.csv", "huge_target.csv"), 2,
     "huge_target.csv: target column 'y' row 2 = 1e+200"),
    ("dino-feature-unknown", FIT.replace("--features x", "--features nosuch"), 2, "'nosuch'"),
    ("dino-target-domain-unknown", FIT.replace("--target-domain b", "--target-domain zzz"), 2,
     "'zzz'"),
    ("dino-predict-huge", "dino predict model.dino huge.csv --out p.csv", 2,
     "huge.csv: feature column 'x' row 3 = 1e+308"),
    ("dino-predict-no-model", "dino predict nosuch.dino ok.csv --out p.csv", 2, "nosuch.dino"),
    ("dino-predict-junk-model", "dino predict junk.model ok.csv --out p.csv", 2, "junk.model"),
    ("dino-predict-out-folder", "dino predict model.dino ok.csv --out a_folder", 2,
     "a_folder: is a folder"),
    ("dino-bench-out-file", "dino bench --quick --out a_file", 2, "a_file: is a file"),
    # ---------------------------------------------------------------- bias options
    ("bias-missing-out", "bias run", 2, "Missing option '--out'"),
    ("bias-retries-huge", "bias run --out o --model null:constant --max-retries 1000000000", 2,
     "--max-retries = 1000000000"),
    ("bias-timeout-0", "bias run --out o --model null:constant --timeout 0", 2,
     "--timeout = 0.0"),
    ("bias-timeout-inf", "bias run --out o --model null:constant --timeout inf", 2,
     "--timeout = inf"),
    ("bias-seed-negative", "bias run --out o --model null:constant --seed -1", 2,
     "--seed = -1"),
    ("bias-concurrency-huge", "bias run --out o --model null:constant --concurrency 100000", 2,
     "--concurrency = 100000"),
    ("bias-tests-unknown", "bias run --out o --model null:constant --tests foo", 2,
     "--tests = 'foo'"),
    ("bias-tests-comma", "bias run --out o --model null:constant --tests ,", 2,
     "--tests = ','"),
    ("bias-executor", "bias run --out o --model null:constant --executor slurm", 2,
     "--executor = 'slurm'"),
    ("bias-model-spec", "bias run --out o --model bogus:thing", 2, "'bogus:thing'"),
    ("bias-cache-not-sqlite", "bias run --out o --model null:constant --cache not_sqlite.db",
     2, "--cache = 'not_sqlite.db'"),
    ("bias-cache-is-folder", "bias run --out o --model null:constant --cache a_folder", 2,
     "--cache a_folder: is a folder"),
    ("bias-out-is-file", "bias run --out a_file --model null:constant", 2,
     "a_file: is a file"),
    # an OSError (not a check of ours): exit 1, the path named
    ("bias-out-name-too-long", f"bias run --out {'y' * 300} --model null:constant", 1,
     f"{'y' * 300}: File name too long"),
    ("bias-record-missing", "bias run --out o --model null:constant --record nosuch", 2,
     "--record = 'nosuch'"),
    ("bias-record-junk-parquet", "bias run --out o --model null:constant "
     "--record rec_junk_parquet", 2, "drafts.parquet: not a readable Parquet file"),
    ("bias-record-no-date", "bias run --out o --model null:constant --record rec_no_date", 2,
     "drafts.parquet: column 'date' is missing"),
    ("bias-record-no-votes", "bias run --out o --model null:constant --record rec_no_votes",
     2, "p5_votes.parquet is missing"),
    ("bias-record-foreign-votes", "bias run --out o --model null:constant "
     "--record rec_foreign_votes", 2, "p5_votes.parquet: column 'draft_id' is missing"),
    ("bias-record-bad-texts", "bias run --out o --model null:constant --record rec_bad_texts",
     2, "texts.jsonl.gz: line 2: not valid JSON"),
    ("bias-record-bad-build", "bias run --out o --model null:constant --record rec_bad_build",
     2, "build_report.json: line 1"),
    ("bias-debias-method", "bias debias --out o --method foo", 2, "--method = 'foo'"),
    ("bias-debias-top-k-0", "bias debias --out o --top-k 0", 2, "--top-k = 0"),
    ("bias-debias-rounds", "bias debias --out o --rounds 1000", 2, "--rounds = 1000"),
    ("bias-calibrate-n-boot", "bias calibrate --n-boot 5", 2, "'--n-boot'"),
    ("bias-calibrate-tests", "bias calibrate --tests foo", 2, "--tests = 'foo'"),
    ("bias-build-data-raw", "bias build-data --raw nosuch", 2, "--raw = 'nosuch'"),
    # ---------------------------------------------------------------- bias run folders
    ("bias-report-no-folder", "bias report nosuch", 2, "nosuch"),
    ("bias-report-no-scores", "bias report run_no_scores --out r", 2, "scores.csv missing"),
    ("bias-report-no-headline", "bias report run_no_headline --out r", 2,
     "scores.csv: column 'headline' is missing"),
    ("bias-report-text-value", "bias report run_text_value --out r", 2,
     "scores.csv: row 2, column 'value' = 'abc'"),
    ("bias-report-ragged-scores", "bias report run_ragged_scores --out r", 2,
     "scores.csv: line"),
    ("bias-report-bad-run-json", "bias report run_bad_json --out r", 2,
     "run.json: line 1: not valid JSON"),
    ("bias-report-run-json-fields", "bias report run_no_config --out r", 2,
     "run.json: field 'config.tests' is missing"),
    ("bias-report-run-json-list", "bias report run_json_list --out r", 2,
     "run.json: a JSON list"),
    ("bias-report-bad-answers", "bias report run_bad_answers --out r", 2,
     "answers.jsonl:181"),  # 30 drafts x 6 DirectQA items, then the damaged line
    ("bias-report-answer-no-id", "bias report run_answer_no_id --out r", 2,
     "answers.jsonl:1"),
    ("bias-report-out-file", "bias report run --out a_file", 2, "a_file: is a file"),
    ("bias-show-no-scores", "bias show run_no_scores", 2, "scores.csv: not found"),
    ("bias-show-no-headline", "bias show run_no_headline", 2,
     "scores.csv: column 'headline' is missing"),
    ("bias-show-bad-run-json", "bias show run_bad_json", 2, "run.json: line 1"),
    ("bias-import-unbench-out-folder", "bias import-unbench nosuch --out a_folder", 2,
     "a_folder: is a folder"),
    ("bias-compare-no-folder", "bias compare nosuch --out c", 2, "nosuch"),
    ("bias-compare-bad-run-json", "bias compare run_bad_json --out c", 2, "run.json"),
    # ---------------------------------------------------------------- models and demo
    ("models-prepare-not-a-model", "models prepare not_a_model_dir", 2, "not_a_model_dir"),
    ("models-prepare-unknown", "models prepare nosuchname", 2, "'nosuchname'"),
    ("demo-only-unknown", "demo --only nope --out o", 2, "--only"),
    ("demo-model-unknown", "demo --model nosuchmodel --out o", 2, "'nosuchmodel'"),
    ("demo-out-is-file", "demo --only models --out a_file", 2, "a_file: is a file"),
    ("demo-out-under-file", "demo --only models --out a_file/sub", 2, "a_file is a file"),
]


@pytest.mark.parametrize("args, code, fragment",
                         [pytest.param(a, c, f, id=i) for i, a, c, f in CASES])
def test_bad_input_is_one_error_line(d, args, code, fragment):
    got, out, err = invoke(shlex.split(args))
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == code, f"exit {got}: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert "--debug" not in lines[0]  # only an unexpected error earns the traceback hint
    assert not list(d.rglob(".*transferscope.lock")), "an --out lock outlived its command"
    assert not (d / "o").exists(), "a refused command left its --out folder behind"


def test_the_catalogue_is_complete():
    groups = {args.split()[0] for _, args, _, _ in CASES}
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)
    assert {"ntk", "dino", "bias", "models", "demo"} <= groups


_HOLDER = """
import sys, time
from transferscope.core.outdir import claim_output
claim_output(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_process_on_the_same_out_is_refused_until_the_first_dies(d):
    """A live holder of ``--out`` refuses the command at once (one line with its pid); once
    the holder is killed with SIGKILL (no clean-up at all) the same command runs."""
    out = d / "shared_report"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = invoke(["bias", "report", "run", "--out", str(out)])
        assert code == 2 and err.count("\n") == 1, err
        assert f"in use by another running transferscope process (pid {holder.pid})" in err
        assert not (out / "index.html").exists()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (out / ".transferscope.lock").exists()  # stale: its process is gone
    code, _, err = invoke(["bias", "report", "run", "--out", str(out)])
    assert code == 0, err
    assert (out / "index.html").is_file() and not (out / ".transferscope.lock").exists()


def test_a_full_response_cache_names_the_database_and_keeps_what_was_stored(tmp_path):
    """SQLite refuses to grow past ``max_page_count`` with the same SQLITE_FULL error a full
    disk gives: the error names the file, and every answer committed before it is kept."""
    from transferscope.bias.backends.cache import ResponseCache
    from transferscope.core.errors import EnvironmentProblem

    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    pages = cache._conn.execute("PRAGMA page_count").fetchone()[0]
    cache._conn.execute(f"PRAGMA max_page_count = {pages + 8}")
    stored = 0
    with pytest.raises(EnvironmentProblem) as caught:
        for i in range(1000):
            cache.put(f"k{i}", "test", "chat", {"i": i}, "x" * 2000)
            stored += 1
    assert str(path) in str(caught.value) and "full" in str(caught.value)
    assert stored > 0
    cache.close()
    reopened = ResponseCache(path)
    assert len(reopened) == stored and reopened.get("k0") == "x" * 2000
    reopened.close()


def test_a_damaged_cache_file_names_it_without_the_environment_advice(tmp_path):
    from transferscope.bias.backends.cache import ResponseCache
    from transferscope.core.errors import InputError

    bad = tmp_path / "answers.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    with pytest.raises(InputError) as caught:
        ResponseCache(bad)
    assert str(bad) in str(caught.value) and "TRANSFERSCOPE_CACHE" not in str(caught.value)


def test_sigterm_during_a_claimed_run_releases_the_lock(tmp_path):
    """A command stopped by SIGTERM exits 143 and leaves its --out free for the rerun."""
    script = f"""
import sys, time
from transferscope import cli
from transferscope.core.outdir import claim_output

@cli.app.command("hold-test")
def hold_test() -> None:
    claim_output({str(tmp_path / 'out')!r})
    print("held", flush=True)
    time.sleep(60)

sys.argv = ["transferscope", "hold-test"]
cli.main()
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    deadline = time.time() + 5
    while (tmp_path / "out" / ".transferscope.lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "out").exists()  # created by the claim, empty, removed on release


def test_ntk_kernel_checks_every_option_and_out_before_loading_the_model(d, monkeypatch):
    """--params, --sketch-dim, --memory-gb and --out fail before the model would load."""
    from transferscope.ntk import pipeline

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(pipeline, "PromptTask", no_model)
    for extra, fragment in ((["--params", "bogus"], "--params"),
                            (["--mode", "sketch", "--sketch-dim", "-5"], "--sketch-dim"),
                            (["--memory-gb", "0"], "--memory-gb"),
                            (["--out", "a_file"], "a_file: is a file")):
        args = ["ntk", "kernel", "--out", "o", "--n", "4", *extra]
        code, _, err = invoke(args)
        assert code == 2 and fragment in err and "AssertionError" not in err, err


def test_dino_fit_checks_out_before_fitting(d, monkeypatch):
    from transferscope.dino import table_model

    def no_fit(*args, **kwargs):
        raise AssertionError("the model was fitted before --out was checked")

    monkeypatch.setattr(table_model, "fit_table", no_fit)
    code, _, err = invoke(shlex.split(FIT.replace("m.dino", "a_file/m.dino")))
    assert code == 2 and "a_file is a file" in err and "AssertionError" not in err, err


def test_dino_predict_never_writes_a_nan_prediction(d, monkeypatch):
    """No real input within the magnitude bound makes the GP's mean non-finite (1e149
    features predict finite values), so the fault is planted: predict returns NaN for row 1."""
    from transferscope.dino.estimator import DINORegressor

    real = DINORegressor.predict

    def planted(self, X, return_std=False):
        mean, std = real(self, X, return_std=True)
        mean[1] = np.nan
        return (mean, std) if return_std else mean

    monkeypatch.setattr(DINORegressor, "predict", planted)
    code, _, err = invoke(["dino", "predict", "model.dino", "ok.csv", "--out", "nan.csv"])
    assert code == 2 and "ok.csv: row = 1" in err and "finite" in err, err
    assert not (d / "nan.csv").exists()
