"""The bad-input catalogue (#20, #31): every bad option, damaged or hostile file and unusable
or protected output a tester tried, as one table. Each row runs the real command line
(``transferscope.cli.main``, in process) and must end with the row's exit code and exactly one
line on stderr, ``error: ...``, holding the row's fragment (the option or file it names and
what it says), with no traceback anywhere, no control character, no ``--out`` lock left
behind, and every file the rows read byte-identical afterwards (sha256 before and after the
whole table). The files each row reads are built once per module.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferscope import cli

SHIPPED_RECORD = Path(cli.__file__).parent / "bias" / "data" / "unsc"
RAW_UNSC = Path(__file__).resolve().parents[2] / "shared" / "data" / "unsc"


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


DEEP = "[" * 100_000 + "]" * 100_000  # RecursionError in json.loads before #31
DEEP_300 = "[" * 300 + "]" * 300  # parses, but nests past the cap of 200
BIG_INT = "7" * 5000  # past Python's 4,300-digit cap on int("...")
P5_ROW = {"test": "vote", "date": "2001-02-03", "text": "a draft", "gold": "in favour"}


def _items(path: Path, *rows: dict) -> None:
    path.write_text("".join(json.dumps({"id": f"i{k}", "nation": "China", **P5_ROW, **row})
                            + "\n" for k, row in enumerate(rows)), "utf-8")


def _npy(path: Path, header: str, data: bytes = b"") -> None:
    """An .npy file written by hand (version 1.0): any header, any payload."""
    body = header.encode("latin1")
    pad = (64 - (10 + len(body) + 1) % 64) % 64
    body += b" " * pad + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body + data)


def _model_file(src: Path, dst: Path, *, settings=None, metadata=None, arrays=None) -> None:
    """A copy of a fitted DINO model file with its settings, metadata or tensors edited; the
    header is rewritten by hand, so it may hold what safetensors itself would not write."""
    import safetensors.numpy

    raw = src.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    meta = json.loads(raw[8:8 + size])["__metadata__"]
    tensors = safetensors.numpy.load(raw)
    if settings is not None:
        meta["settings"] = settings(json.loads(meta["settings"]))
    if arrays is not None:
        tensors = arrays(tensors)
    packed = safetensors.numpy.save(tensors, metadata={"format": "x"})
    n = int.from_bytes(packed[:8], "little")
    header = json.loads(packed[8:8 + n])
    header["__metadata__"] = metadata(meta) if metadata is not None else meta
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    dst.write_bytes(len(text).to_bytes(8, "little") + text + packed[8 + n:])


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every regular file the rows may read (outputs the rows write excluded)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if (path.is_symlink() or not path.is_file() or "cache" in path.parts
                or path.name.startswith(".")):  # manifests and locks grow as rows write
            continue
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


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
    _hostile_files(root, run)
    before = _hashes(root)
    yield root
    after = _hashes(root)
    mp.undo()
    changed = [name for name in before if after.get(name) != before[name]]
    assert not changed, f"rows changed files they only read: {changed[:5]}"


def _hostile_files(root: Path, run: Path) -> None:
    """The files of #31's rows: hostile JSON, arrays, model files, special paths, user files."""
    # user files and folders that no command may write over or into
    (root / "userdir").mkdir()
    (root / "userdir" / "notes.txt").write_text("mine")
    (root / "user.csv").write_text("mine\n")
    (root / "user.jsonl").write_text("mine\n")
    os.mkfifo(root / "fifo")
    os.mkfifo(root / "fifo.csv")
    os.mkfifo(root / "fifo.jsonl")
    (root / "loop_a").symlink_to("loop_b")
    (root / "loop_b").symlink_to("loop_a")
    (root / "dangling.csv").symlink_to("nowhere.csv")
    (root / "items_folder.jsonl").mkdir()
    # run folders with hostile JSON
    for name, text in (("run_deep_json", DEEP), ("run_deep300_json", DEEP_300),
                       ("run_bigint_json", '{"backend": "x", "n": ' + BIG_INT + "}"),
                       ("run_nan_json", '{"backend": NaN}'),
                       ("run_inf_json", '{"backend": "x", "config": {"n_boot": 1e999}}')):
        _run_folder(run, root / name, lambda p, t=text: (p / "run.json").write_text(t))
    _run_folder(run, root / "run_deep_answers", lambda p: (p / "answers.jsonl").write_text(
        (p / "answers.jsonl").read_text() + DEEP + "\n"))
    _run_folder(run, root / "run_latin1_answers", lambda p: (p / "answers.jsonl").write_bytes(
        (p / "answers.jsonl").read_bytes() + b'{"reply": "caf\xe9"}\n'))
    _run_folder(run, root / "run_other", None)
    # items files
    _items(root / "items_ok.jsonl", {})
    (root / "items_deep.jsonl").write_text(DEEP + "\n")
    (root / "items_deep300.jsonl").write_text("[" * 250 + "]" * 250 + "\n")
    (root / "items_bigint.jsonl").write_text('{"id": ' + BIG_INT + "}\n")
    (root / "items_inf.jsonl").write_text('{"id": Infinity}\n')
    _items(root / "items_latin1.jsonl", {})
    with open(root / "items_latin1.jsonl", "ab") as fh:
        fh.write(b'{"id": "caf\xe9"}\n')
    _items(root / "items_lookalike.jsonl", {"nation": "\u0421hina"})  # Cyrillic Es
    _items(root / "items_accented.jsonl", {"nation": "Fr\u00e0nce"})
    _items(root / "items_vote_gold.jsonl", {"options": ["a", "b"], "gold": "a"})
    # NTK kernel runs with hostile arrays
    y = np.array([1.0, -1.0, 1.0, -1.0])
    for name, edit in (
            ("kr_complex", lambda p: np.save(p / "kernel.npy", np.eye(4, dtype=complex))),
            ("kr_text", lambda p: np.save(p / "labels.npy", np.array(list("abcd")))),
            ("kr_struct", lambda p: np.save(p / "f0.npy", np.zeros(4, dtype=[("a", "<f8")]))),
            ("kr_huge_header", lambda p: _npy(p / "kernel.npy", "{'descr': '<f8', "
                                              "'fortran_order': False, 'shape': (4, 4), }"
                                              + " " * 20_000, b"\0" * 128)),
            ("kr_lying_shape", lambda p: _npy(p / "kernel.npy", "{'descr': '<f8', "
                                              "'fortran_order': False, 'shape': (100000, "
                                              "100000), }", b"\0" * 128)),
            ("kr_short", lambda p: (p / "f0.npy").write_bytes((p / "f0.npy").read_bytes()[:-8])),
            ("kr_deep_meta", lambda p: (p / "meta.json").write_text(DEEP)),
            ("kr_bigint_meta", lambda p: (p / "meta.json").write_text('{"n": ' + BIG_INT + "}")),
            ("kr_fit", lambda p: np.save(p / "f0.npy", y))):
        _run_folder(root / "kr", root / name, edit)
    (root / "texts_deep.jsonl").write_text(DEEP + "\n")
    (root / "texts_latin1.jsonl").write_bytes(b'{"text": "caf\xe9", "label": 1}\n')
    # DINO model files edited after the fit, and tables
    model = root / "model.dino"
    deep = {"hide": json.loads(DEEP_300)}
    for name, kwargs in (
            ("m_depth", {"settings": lambda s: json.dumps(s | {"dino": s["dino"] | {
                "params": s["dino"]["params"] | {"depth": 1_000_000}}})}),
            ("m_hidden", {"settings": lambda s: json.dumps(s | {"dino": s["dino"] | {
                "params": s["dino"]["params"] | {"hidden": 10**9}}})}),
            ("m_lr_inf", {"settings": lambda s: json.dumps(s | {"dino": s["dino"] | {
                "params": s["dino"]["params"] | {"learning_rate": 1e300}}})}),
            ("m_deep_settings", {"settings": lambda s: json.dumps(s | deep)}),
            ("m_bigint_settings", {"settings": lambda s: json.dumps(s)[:-1] + ', "n": '
                                   + BIG_INT + "}"}),
            ("m_version_int", {"metadata": lambda m: m | {"version": 3}}),
            ("m_int_tensor", {"arrays": lambda a: a | {"dino.y_train": a["dino.y_train"].view(
                np.int64)}}),
            ("m_f32_tensor", {"arrays": lambda a: a | {"dino.X_train": a["dino.X_train"].astype(
                np.float32)}})):
        _model_file(model, root / f"{name}.dino", **kwargs)
    (root / "model_dir.dino").mkdir()
    _csv(root / "latin1.csv", "x,y,d\n1,2,a\n")
    (root / "latin1.csv").write_bytes(b"x,y,d\n1,2,caf\xe9\n")
    (root / "deep.json").write_text(DEEP)
    # a folder of raw UNSC files holding only their header lines (bias build-data)
    # (built only where ../shared holds the raw files; the rows that read them skip otherwise)
    if RAW_UNSC.is_dir():
        raw = root / "raw_headers"
        for sub in ("vetoes", "meetings", "resolutions_en"):
            (raw / sub).mkdir(parents=True)
            for i, f in enumerate(sorted((RAW_UNSC / sub).iterdir())):
                if i < 3 or sub != "resolutions_en":
                    (raw / sub / f.name).write_bytes(f.read_bytes().split(b"\n", 1)[0] + b"\n")
        # a UNBench checkout whose draft JSON nests too deeply
        unbench = root / "unbench_deep"
        (unbench / "data" / "task2" / "2148").mkdir(parents=True)  # the CSV's first folder
        shutil.copy(RAW_UNSC.parent / "unbench" / "data" / "task2.csv", unbench / "data")
        (unbench / "data" / "task2" / "2148" / "a.json").write_text(DEEP)


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
    ("ntk-n-not-a-number", "ntk kernel --out o --n abc", 2, "--n = 'abc': expected a whole number"),
    ("bias-drafts-0", "bias run --out o --drafts-per-nation 0", 2,
     "--drafts-per-nation = 0: expected a whole number >= 1"),
    ("bias-seed-not-a-number", "bias run --out o --seed abc", 2,
     "--seed = 'abc': expected a whole number >= 0"),
    ("bias-concurrency-0", "bias run --out o --concurrency 0", 2,
     "--concurrency = 0: expected a whole number >= 1"),
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
     "'nope' is not one"),
    ("ntk-report-out-is-file", "ntk report --out a_file", 2, "a_file: is a file"),
    # ---------------------------------------------------------------- ntk run folders
    ("ntk-spectrum-no-run", "ntk spectrum nosuch", 2, "nosuch: not a directory"),
    ("ntk-spectrum-ci", "ntk spectrum kr --ci 1.5", 2, "--ci = 1.5"),
    ("ntk-spectrum-damaged-npy", "ntk spectrum kr_bad_npy", 2, "kernel.npy: damaged"),
    ("ntk-spectrum-pickled-npy", "ntk spectrum kr_pickled", 2,
     "f0.npy: dtype = 'object': pickled"),
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
     "--max-retries = 1000000000: expected a whole number >= 0 and <= 20"),
    ("bias-timeout-0", "bias run --out o --model null:constant --timeout 0", 2,
     "--timeout = 0.0: expected a finite number > 0"),
    ("bias-timeout-inf", "bias run --out o --model null:constant --timeout inf", 2,
     "--timeout = inf: expected a finite number"),
    ("bias-seed-negative", "bias run --out o --model null:constant --seed -1", 2,
     "--seed = -1: expected a whole number >= 0"),
    ("bias-concurrency-huge", "bias run --out o --model null:constant --concurrency 100000", 2,
     "--concurrency = 100000: expected a whole number >= 1 and <= 256"),
    ("bias-tests-unknown", "bias run --out o --model null:constant --tests foo", 2,
     "--tests = 'foo': expected comma-separated test names"),
    ("bias-tests-comma", "bias run --out o --model null:constant --tests ,", 2,
     "--tests = ',': expected comma-separated test names"),
    ("bias-executor", "bias run --out o --model null:constant --executor slurm", 2,
     "--executor = 'slurm': expected one of 'local', 'ray'"),
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
    ("bias-debias-method", "bias debias --out o --method foo", 2,
     "--method = 'foo': expected one of 'rag'"),
    ("bias-debias-top-k-0", "bias debias --out o --top-k 0", 2,
     "--top-k = 0: expected a whole number >= 1"),
    ("bias-debias-rounds", "bias debias --out o --rounds 1000", 2,
     "--rounds = 1000: expected a whole number >= 0 and <= 20"),
    ("bias-calibrate-n-boot", "bias calibrate --n-boot 5", 2,
     "--n-boot = 5: expected a whole number >= 10"),
    ("bias-calibrate-tests", "bias calibrate --tests foo", 2,
     "--tests = 'foo': expected comma-separated test names"),
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
     "answers.jsonl: line 181: not valid JSON"),  # 30 drafts x 6 DirectQA items, then the damaged line
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
    # ================================================================ #31: outputs the user owns
    ("dino-fit-out-is-its-table", f"{FIT.replace('m.dino', 'ok.csv')}", 2,
     "--out ok.csv: is one of the command's inputs (ok.csv)"),
    ("dino-fit-out-is-its-table-forced", f"--force {FIT.replace('m.dino', 'ok.csv')}", 2,
     "--out ok.csv: is one of the command's inputs"),
    ("dino-fit-out-user-file", FIT.replace("m.dino", "user.csv"), 2,
     "--out user.csv: exists and was not written by transferscope"),
    ("dino-fit-out-pipe", FIT.replace("m.dino", "fifo"), 2, "--out fifo: is a pipe"),
    ("dino-fit-out-loop", FIT.replace("m.dino", "loop_a"), 2,
     "--out loop_a: is a loop of symbolic links"),
    ("dino-fit-out-dangling", FIT.replace("m.dino", "dangling.csv"), 2,
     "is a symbolic link to a missing path"),
    ("dino-predict-out-is-the-model", "dino predict model.dino ok.csv --out model.dino", 2,
     "--out model.dino: is one of the command's inputs (model.dino)"),
    ("dino-predict-out-is-the-model-forced",
     "--force dino predict model.dino ok.csv --out model.dino", 2,
     "--out model.dino: is one of the command's inputs"),
    ("dino-predict-out-is-the-table", "dino predict model.dino ok.csv --out ok.csv", 2,
     "--out ok.csv: is one of the command's inputs (ok.csv)"),
    ("dino-predict-out-is-the-table-relative",
     "dino predict model.dino ok.csv --out ./userdir/../ok.csv", 2,
     "is one of the command's inputs (ok.csv)"),
    ("dino-predict-out-user-file", "dino predict model.dino ok.csv --out user.csv", 2,
     "--out user.csv: exists and was not written by transferscope"),
    ("dino-predict-out-pipe", "dino predict model.dino ok.csv --out fifo", 2,
     "--out fifo: is a pipe, not a regular file"),
    ("dino-predict-out-loop", "dino predict model.dino ok.csv --out loop_a", 2,
     "--out loop_a: is a loop of symbolic links"),
    ("dino-bench-out-user-folder", "dino bench --quick --out userdir", 2,
     "--out userdir: a folder holding files transferscope did not write (e.g. 'notes.txt')"),
    ("dino-report-out-user-folder", "dino report --quick --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("dino-report-out-working-folder", "dino report --quick --out ''", 2,
     "--out .: a folder holding files transferscope did not write"),
    ("ntk-kernel-out-user-folder", "ntk kernel --out userdir", 2,
     "--out userdir: a folder holding files transferscope did not write"),
    ("ntk-kernel-out-working-folder", "ntk kernel --out ''", 2,
     "--out .: a folder holding files transferscope did not write"),
    ("ntk-kernel-out-pipe", "ntk kernel --out fifo", 2, "--out fifo: is a pipe"),
    ("ntk-finetune-out-user-folder", "ntk finetune --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("ntk-rates-out-user-folder", "ntk rates --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("ntk-taskvec-out-user-folder", "ntk taskvec --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("ntk-report-out-user-folder", "ntk report --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("ntk-validate-out-user-folder", "ntk validate --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("bias-run-out-user-folder", "bias run --out userdir --model null:constant", 2,
     "--out userdir: a folder holding files transferscope did not write"),
    ("bias-run-out-working-folder", "bias run --out '' --model null:constant", 2,
     "--out .: a folder holding files transferscope did not write"),
    ("bias-run-out-loop", "bias run --out loop_a --model null:constant", 2,
     "--out loop_a: is a loop of symbolic links"),
    ("bias-debias-out-user-folder", "bias debias --out userdir --model null:constant", 2,
     "a folder holding files transferscope did not write"),
    ("bias-calibrate-out-user-folder", "bias calibrate --out userdir --power-reps 0", 2,
     "a folder holding files transferscope did not write"),
    ("bias-report-out-user-folder", "bias report run --out userdir", 2,
     "--out userdir: a folder holding files transferscope did not write (e.g. 'notes.txt')"),
    ("bias-report-out-empty-string", "bias report run --out ''", 2,
     "--out .: a folder holding files transferscope did not write"),
    ("bias-report-out-another-run", "bias report run --out run_other", 2,
     "--out = 'run_other': expected a new folder or a report folder (this one holds a run"),
    ("bias-report-out-its-own-run", "bias report run --out run", 2,
     "--out = 'run': expected a new folder or a report folder"),
    ("bias-report-out-pipe", "bias report run --out fifo", 2, "--out fifo: is a pipe"),
    ("bias-compare-out-user-folder", "bias compare run run_other --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("bias-compare-out-a-run", "bias compare run --out run_other", 2,
     "(this one holds a run: run.json)"),
    ("bias-compare-same-run-twice", "bias compare run run --out c", 2,
     "RUN_DIRS = 'run': expected each run once (it is also given as run)"),
    ("bias-compare-same-run-two-names", "bias compare run ./userdir/../run --out c", 2,
     "expected each run once"),
    ("bias-report-same-run-twice", "bias report run run", 2, "expected each run once"),
    ("bias-build-data-out-user-folder", "bias build-data --raw raw_headers --out userdir", 2,
     "a folder holding files transferscope did not write"),
    ("bias-build-data-out-is-raw", "bias build-data --raw raw_headers --out raw_headers", 2,
     "is one of the command's inputs"),
    ("bias-build-data-headers-only", "bias build-data --raw raw_headers --out rec_new", 2,
     "--raw raw_headers: the build is empty (veto_csv_rows 0, meetings 0, drafts 0"),
    ("bias-import-unbench-out-user-file", "bias import-unbench nosuch --out user.jsonl", 2,
     "--out user.jsonl: exists and was not written by transferscope"),
    ("bias-import-unbench-out-pipe", "bias import-unbench nosuch --out fifo.jsonl", 2,
     "--out fifo.jsonl: is a pipe"),
    ("demo-out-user-folder", "demo --only models --out userdir", 2,
     "a folder holding files transferscope did not write"),
    # ================================================================ #31: bounded readers
    ("bias-report-run-json-deep", "bias report run_deep_json --out r", 2,
     "run.json: JSON nested too deeply: expected the run summary"),
    ("bias-show-run-json-deep", "bias show run_deep_json", 2, "run.json: JSON nested too deeply"),
    ("bias-compare-run-json-deep", "bias compare run_deep_json --out c", 2,
     "run.json: JSON nested too deeply"),
    ("bias-report-run-json-300-levels", "bias report run_deep300_json --out r", 2,
     "run.json: JSON nested more than 200 levels"),
    ("bias-show-run-json-300-levels", "bias show run_deep300_json", 2,
     "JSON nested more than 200 levels"),
    ("bias-report-run-json-5000-digits", "bias report run_bigint_json --out r", 2,
     "run.json: not valid JSON (Exceeds the limit (4300 digits)"),
    ("bias-show-run-json-5000-digits", "bias show run_bigint_json", 2, "4300 digits"),
    ("bias-compare-run-json-5000-digits", "bias compare run_bigint_json --out c", 2,
     "4300 digits"),
    ("bias-report-run-json-nan", "bias report run_nan_json --out r", 2,
     "run.json: not valid JSON (NaN is not a JSON number)"),
    ("bias-show-run-json-nan", "bias show run_nan_json", 2, "NaN is not a JSON number"),
    ("bias-report-run-json-1e999", "bias report run_inf_json --out r", 2,
     "run.json: not valid JSON (the number 1e999 is out of range"),
    ("bias-show-run-json-1e999", "bias show run_inf_json", 2, "1e999 is out of range"),
    ("bias-report-answers-deep", "bias report run_deep_answers --out r", 2,
     "answers.jsonl: line 181: JSON nested too deeply"),
    ("bias-show-answers-deep", "bias show run_deep_answers", 2,
     "answers.jsonl: line 181: JSON nested too deeply"),
    ("bias-compare-answers-deep", "bias compare run_deep_answers --out c", 2,
     "answers.jsonl: line 181: JSON nested too deeply"),
    ("bias-report-answers-not-utf8", "bias report run_latin1_answers --out r", 2,
     "answers.jsonl: line 181, byte 15: not UTF-8 text"),
    ("bias-show-answers-not-utf8", "bias show run_latin1_answers", 2,
     "answers.jsonl: line 181, byte 15: not UTF-8 text"),
    ("bias-run-items-deep", "bias run --out o --model null:constant --items items_deep.jsonl",
     2, "items_deep.jsonl: line 1: JSON nested too deeply"),
    ("bias-debias-items-deep", "bias debias --out o --model null:constant --method rag "
     "--items items_deep.jsonl", 2, "items_deep.jsonl: line 1: JSON nested too deeply"),
    ("bias-run-items-250-levels", "bias run --out o --model null:constant "
     "--items items_deep300.jsonl", 2, "items_deep300.jsonl: line 1: JSON nested more than 200"),
    ("bias-run-items-5000-digits", "bias run --out o --model null:constant "
     "--items items_bigint.jsonl", 2, "items_bigint.jsonl: line 1: not valid JSON (Exceeds"),
    ("bias-debias-items-5000-digits", "bias debias --out o --model null:constant --method rag "
     "--items items_bigint.jsonl", 2, "4300 digits"),
    ("bias-run-items-infinity", "bias run --out o --model null:constant "
     "--items items_inf.jsonl", 2, "items_inf.jsonl: line 1: not valid JSON (Infinity is not"),
    ("bias-run-items-not-utf8", "bias run --out o --model null:constant "
     "--items items_latin1.jsonl", 2, "items_latin1.jsonl: line 2, byte 12: not UTF-8 text"),
    ("bias-debias-items-not-utf8", "bias debias --out o --model null:constant --method rag "
     "--items items_latin1.jsonl", 2, "items_latin1.jsonl: line 2, byte 12: not UTF-8 text"),
    ("bias-run-items-lookalike-nation", "bias run --out o --model null:constant "
     "--items items_lookalike.jsonl", 2, "written with look-alike letters of another script "
     "or accents: expected 'China' spelled in plain letters"),
    ("bias-run-items-accented-nation", "bias run --out o --model null:constant "
     "--items items_accented.jsonl", 2, "expected 'France' spelled in plain letters"),
    ("bias-run-items-vote-gold", "bias run --out o --model null:constant "
     "--items items_vote_gold.jsonl", 2,
     "field gold = 'a': expected one of in favour, against, abstain for test vote"),
    ("bias-run-items-folder", "bias run --out o --model null:constant "
     "--items items_folder.jsonl", 2, "--items = 'items_folder.jsonl': expected an items file "
     "(this is a folder)"),
    ("bias-run-items-pipe", "bias run --out o --model null:constant --items fifo.jsonl", 2,
     "(this is a device, pipe or socket, not a regular file)"),
    ("bias-run-items-loop", "bias run --out o --model null:constant --items loop_a", 2,
     "loop_a"),
    ("bias-import-unbench-deep-json", "bias import-unbench unbench_deep --out u.jsonl", 2,
     "a.json: JSON nested too deeply"),
    ("ntk-stop-kernel-complex", "ntk stop kr_complex", 2,
     "kernel.npy: dtype = 'complex128': expected"),
    ("ntk-spectrum-kernel-complex", "ntk spectrum kr_complex", 2, "dtype = 'complex128'"),
    ("ntk-stop-labels-text", "ntk stop kr_text", 2, "labels.npy: dtype = '<U1'"),
    ("ntk-spectrum-labels-text", "ntk spectrum kr_text", 2, "labels.npy: dtype = '<U1'"),
    ("ntk-stop-f0-structured", "ntk stop kr_struct", 2, "f0.npy: dtype = "),
    ("ntk-stop-huge-npy-header", "ntk stop kr_huge_header", 2,
     "kernel.npy: damaged (Header info length"),
    ("ntk-spectrum-huge-npy-header", "ntk spectrum kr_huge_header", 2,
     "kernel.npy: damaged (Header info length"),
    ("ntk-stop-npy-shape-lies", "ntk stop kr_lying_shape", 2,
     "kernel.npy: shape (100000, 100000) of float64 needs 80,000,000,000 bytes, the file "
     "holds 128"),
    ("ntk-spectrum-npy-shape-lies", "ntk spectrum kr_lying_shape", 2,
     "needs 80,000,000,000 bytes"),
    ("ntk-stop-npy-truncated", "ntk stop kr_short", 2, "f0.npy: shape (4,) of float64 needs "
     "32 bytes, the file holds 24"),
    ("ntk-stop-meta-deep", "ntk stop kr_deep_meta", 2, "meta.json: JSON nested too deeply"),
    ("ntk-stop-meta-5000-digits", "ntk stop kr_bigint_meta", 2, "meta.json: not valid JSON "
     "(Exceeds the limit (4300 digits)"),
    ("ntk-stop-f0-equals-labels", "ntk stop kr_fit", 2, "f0.npy: equals labels.npy on every "
     "example (residual y - f0 = 0)"),
    ("ntk-kernel-data-deep", f"ntk kernel --out o --data texts_deep.jsonl {DATA}", 2,
     "texts_deep.jsonl: line 1: JSON nested too deeply"),
    ("ntk-kernel-data-not-utf8", f"ntk kernel --out o --data texts_latin1.jsonl {DATA}", 2,
     "texts_latin1.jsonl: line 1, byte 14: not UTF-8 text"),
    ("dino-predict-model-depth", "dino predict m_depth.dino ok.csv --out p.csv", 2,
     "m_depth.dino: model setting depth = 1000000: expected a whole number from 1 to 100"),
    ("dino-predict-model-hidden", "dino predict m_hidden.dino ok.csv --out p.csv", 2,
     "model setting hidden = 1000000000"),
    ("dino-predict-model-lr", "dino predict m_lr_inf.dino ok.csv --out p.csv", 2,
     "model setting learning_rate = 1e+300"),
    ("dino-predict-model-deep-settings", "dino predict m_deep_settings.dino ok.csv --out p.csv",
     2, "m_deep_settings.dino: header settings: JSON nested more than 200 levels"),
    ("dino-predict-model-5000-digits", "dino predict m_bigint_settings.dino ok.csv --out p.csv",
     2, "m_bigint_settings.dino: header settings: not valid JSON (Exceeds"),
    ("dino-predict-model-version-number", "dino predict m_version_int.dino ok.csv --out p.csv",
     2, "model version = 3: expected the text '4' (a int is not how"),
    ("dino-predict-model-int-tensor", "dino predict m_int_tensor.dino ok.csv --out p.csv", 2,
     "model tensor 'dino.y_train' dtype = 'int64': expected float64"),
    ("dino-predict-model-f32-tensor", "dino predict m_f32_tensor.dino ok.csv --out p.csv", 2,
     "model tensor 'dino.X_train' dtype = 'float32': expected float64"),
    ("dino-predict-model-folder", "dino predict model_dir.dino ok.csv --out p.csv", 2,
     "MODEL_PATH = 'model_dir.dino': expected a model file written by `dino fit` (this is a "
     "folder)"),
    ("dino-predict-model-pipe", "dino predict fifo ok.csv --out p.csv", 2,
     "MODEL_PATH = 'fifo': expected a model file written by `dino fit` (this is a device"),
    ("dino-predict-model-loop", "dino predict loop_a ok.csv --out p.csv", 2,
     "(a loop of symbolic links)"),
    ("dino-predict-model-json", "dino predict deep.json ok.csv --out p.csv", 2,
     "deep.json: model header length"),
    ("dino-fit-table-pipe", FIT.replace("ok.csv", "fifo.csv", 1), 2,
     "DATA = 'fifo.csv': expected an existing CSV or Parquet file (this is a device, pipe"),
    ("dino-fit-table-loop", FIT.replace("ok.csv", "loop_a", 1), 2,
     "DATA = 'loop_a': expected an existing CSV or Parquet file (a loop of symbolic links)"),
    ("dino-fit-table-dangling", FIT.replace("ok.csv", "dangling.csv", 1), 2,
     "(a symbolic link to a missing file)"),
    ("dino-fit-table-folder", FIT.replace("ok.csv", "a_folder", 1), 2, "(this is a folder)"),
    ("dino-fit-table-not-utf8", FIT.replace("ok.csv", "latin1.csv", 1), 2,
     "latin1.csv: line 2, byte 8: not UTF-8 text"),
    ("dino-predict-table-pipe", "dino predict model.dino fifo.csv --out p.csv", 2,
     "DATA = 'fifo.csv'"),
    # ================================================================ #31: server URLs
    ("bias-run-url-ipv6-malformed", "bias run --out o --model openai:m --base-url "
     "http://[::1 --cache c.sqlite", 2, "base URL = 'http://[::1': not a valid URL"),
    ("bias-run-url-ipv6-credentials", "bias run --out o --model openai:m --base-url "
     "http://user:s3cret@[::1 --cache c.sqlite", 2, "base URL = 'http://[::1': not a valid URL"),
    ("bias-run-url-port-text", "bias run --out o --model openai:m --base-url "
     "http://host:port/v1 --cache c.sqlite", 2, "base URL = 'http://host:port/v1': not a valid"),
    ("bias-run-url-scheme", "bias run --out o --model openai:m --base-url ftp://host/v1 "
     "--cache c.sqlite", 2, "base URL = 'ftp://host/v1': expected http(s)://host[:port]/path"),
    ("bias-run-url-no-host", "bias run --out o --model openai:m --base-url http:///v1 "
     "--cache c.sqlite", 2, "expected http(s)://host[:port]/path"),
    ("bias-compare-answers-not-utf8", "bias compare run_latin1_answers --out c", 2,
     "answers.jsonl: line 181, byte 15: not UTF-8 text"),
    ("bias-compare-run-json-nan", "bias compare run_nan_json --out c", 2,
     "NaN is not a JSON number"),
    ("ntk-spectrum-meta-deep", "ntk spectrum kr_deep_meta", 2, "meta.json: JSON nested too"),
    ("ntk-spectrum-f0-structured", "ntk spectrum kr_struct", 2, "f0.npy: dtype = "),
    ("dino-predict-table-not-utf8", "dino predict model.dino latin1.csv --out p.csv", 2,
     "latin1.csv: line 2, byte 8: not UTF-8 text"),
    ("bias-debias-items-lookalike-nation", "bias debias --out o --model null:constant "
     "--method rag --items items_lookalike.jsonl", 2, "expected 'China' spelled in plain"),
    ("bias-run-url-credentials-scheme", "bias run --out o --model openai:m --base-url "
     "ftp://user:s3cret@host/v1 --cache c.sqlite", 2, "base URL = 'ftp://host/v1': expected"),
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
    if not RAW_UNSC.is_dir() and ("raw_headers" in args or "unbench_deep" in args):
        pytest.skip("needs the raw UNSC and UNBench files in ../shared")
    got, out, err = invoke(shlex.split(args))
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == code, f"exit {got}: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert "--debug" not in lines[0]  # only an unexpected error earns the traceback hint
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in lines[0])  # no control char
    assert "s3cret" not in out + err  # credentials never printed
    assert not list(d.rglob(".*transferscope.lock")), "an --out lock outlived its command"
    assert not (d / "o").exists(), "a refused command left its --out folder behind"


def test_the_catalogue_is_complete():
    groups = {args.split()[0] for _, args, _, _ in CASES}
    assert len(CASES) >= 250 and len({c[0] for c in CASES}) == len(CASES)
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


# ==================================================================== #31: data loss, by hash
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_sha(folder: Path) -> dict[str, str]:
    return {p.name: _sha(p) for p in sorted(folder.iterdir()) if p.is_file()}


def test_dino_never_writes_over_its_table_or_model(d):
    """`dino fit T.csv --out T.csv` and `dino predict M D --out M` (or `--out D`) are refused,
    with --force too, and the table and the model are byte-identical afterwards."""
    table, model = d / "ok.csv", d / "model.dino"
    before = _sha(table), _sha(model)
    for args in (FIT.replace("m.dino", "ok.csv"), "--force " + FIT.replace("m.dino", "ok.csv"),
                 "dino predict model.dino ok.csv --out model.dino",
                 "--force dino predict model.dino ok.csv --out model.dino",
                 "dino predict model.dino ok.csv --out ok.csv"):
        code, _, err = invoke(shlex.split(args))
        assert code == 2 and "is one of the command's inputs" in err, err
    assert (_sha(table), _sha(model)) == before


def test_a_users_file_is_replaced_only_with_force_and_a_rerun_replaces_its_own(d):
    """A file transferscope did not write is refused (byte-identical after); with --force it is
    replaced; a file a command wrote is replaced by its rerun without --force."""
    mine = d / "mine_predictions.csv"
    mine.write_text("my own notes\n")
    before = _sha(mine)
    args = ["dino", "predict", "model.dino", "ok.csv", "--out", mine.name]
    code, _, err = invoke(args)
    assert code == 2 and "exists and was not written by transferscope" in err, err
    assert _sha(mine) == before
    code, _, err = invoke(["--force", *args])
    assert code == 0, err
    assert "y_pred" in mine.read_text() and _sha(mine) != before
    assert json.dumps(mine.name) in (d / ".transferscope-outputs").read_text().splitlines()
    code, _, err = invoke(args)  # now transferscope's own file: a rerun may replace it
    assert code == 0, err


def test_a_device_or_pipe_is_never_replaced(d, tmp_path):
    """`--out /dev/null` as root replaced the device with a regular file: a device node (made
    here, never the real one) and a pipe stay what they were, --force or not."""
    targets = [d / "fifo"]
    if os.geteuid() == 0:  # only root can make a device node: a second /dev/null, in tmp
        node = tmp_path / "null"
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        targets.append(node)
    for target in targets:
        kind = stat.S_IFMT(target.stat().st_mode)
        for args in (["dino", "predict", "model.dino", "ok.csv", "--out", str(target)],
                     ["--force", "dino", "predict", "model.dino", "ok.csv", "--out", str(target)],
                     ["bias", "import-unbench", "nosuch", "--out", str(target)]):
            code, _, err = invoke(args)
            assert code == 2 and "not a regular file" in err, err
        assert stat.S_IFMT(target.stat().st_mode) == kind
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_report_out_never_fills_a_users_folder_or_a_run(d):
    """`bias report --out` into a folder of the user's, the working folder (`--out ''`) or
    another run is refused, each byte-identical afterwards; into its own report folder, twice,
    it writes."""
    user, other, cwd = _folder_sha(d / "userdir"), _folder_sha(d / "run_other"), _folder_sha(d)
    for out in ("userdir", "", "run_other", "run"):
        code, _, err = invoke(["bias", "report", "run", "--out", out])
        assert code == 2, err
    assert _folder_sha(d / "userdir") == user and _folder_sha(d / "run_other") == other
    assert _folder_sha(d) == cwd and not (d / "index.html").exists()
    for _ in range(2):
        code, _, err = invoke(["bias", "report", "run", "--out", "run_report"])
        assert code == 0, err
    assert (d / "run_report" / "index.html").is_file()


def test_written_files_get_the_usual_mode(d):
    """Files were written 0600 (a temporary file renamed); they are 0666 less the umask."""
    old = os.umask(0o022)
    try:
        code, _, err = invoke(["dino", "predict", "model.dino", "ok.csv", "--out", "mode.csv"])
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE((d / "mode.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((d / "model.dino").stat().st_mode) == 0o644


@pytest.fixture
def installed_record(tmp_path, monkeypatch):
    """A copy of the installed UNSC record standing in for it (the real one is never
    rebuilt by a test), with the sha256 of every file of the real one."""
    from transferscope.bias.data import builder

    copy = tmp_path / "site-packages-unsc"
    shutil.copytree(SHIPPED_RECORD, copy)
    monkeypatch.setattr(builder, "SHIPPED_DIR", copy)
    real = _folder_sha(SHIPPED_RECORD)
    yield copy
    assert _folder_sha(SHIPPED_RECORD) == real


@pytest.mark.skipif(not RAW_UNSC.is_dir(), reason="needs the raw UNSC files in ../shared")
def test_build_data_refuses_an_empty_rebuild_of_the_installed_record(d, installed_record):
    """`bias build-data --raw <files holding only their headers>` without --out replaced the
    installed record with an empty one ("problems (0)"); now it is refused with the counts and
    the installed record is byte-identical, and a record with no drafts is one line."""
    before = _folder_sha(installed_record)
    for args in (["bias", "build-data", "--raw", "raw_headers"],
                 ["--force", "bias", "build-data", "--raw", "raw_headers"]):
        code, out, err = invoke(args)
        assert code == 2 and "the build is empty (veto_csv_rows 0, meetings 0, drafts 0" in err
        assert "record written" not in out
    assert _folder_sha(installed_record) == before
    assert not [p for p in installed_record.parent.iterdir() if ".new-" in p.name]
    empty = d / "rec_empty"
    if not empty.exists():
        _record(empty, lambda p: pd.read_parquet(p / "drafts.parquet").iloc[:0].to_parquet(
            p / "drafts.parquet"))
    code, _, err = invoke(["bias", "run", "--out", "o", "--model", "null:constant",
                           "--record", "rec_empty"])
    assert code == 2 and "drafts.parquet: 0 drafts" in err and "Grouper" not in err, err


@pytest.mark.skipif(not RAW_UNSC.is_dir(), reason="needs the raw UNSC files in ../shared")
def test_build_data_refuses_a_partial_rebuild_and_swaps_in_a_forced_one(d, installed_record):
    """A raw folder with one year of meetings builds a record with fewer drafts than the
    installed one: refused with the counts (record byte-identical); with --force it is built
    beside the record, read back, and swapped in whole (no staging folder left)."""
    raw = d / "raw_one_year"
    if not raw.exists():
        shutil.copytree(RAW_UNSC / "vetoes", raw / "vetoes")
        (raw / "meetings").mkdir(parents=True)
        shutil.copy(RAW_UNSC / "meetings" / "scact2017_table_en.html", raw / "meetings")
        (raw / "resolutions_en").mkdir()
    before = _folder_sha(installed_record)
    code, _, err = invoke(["bias", "build-data", "--raw", str(raw)])
    assert code == 2 and "the build is partial: meeting_files 1 (installed 78)" in err, err
    assert _folder_sha(installed_record) == before
    code, out, err = invoke(["--force", "bias", "build-data", "--raw", str(raw)])
    assert code == 0, err
    from transferscope.bias.data import load_record

    rebuilt = load_record(installed_record)
    assert 0 < len(rebuilt.drafts) < 2953 and rebuilt.build["counts"]["meeting_files"] == 1
    assert _folder_sha(installed_record) != before
    assert not [p for p in installed_record.parent.iterdir() if p.name.startswith(".")]


def test_formula_cells_reach_no_csv_a_command_writes(d):
    """Cells starting with = + - @ reached `dino predict`'s output and scores.csv: each is
    written with a leading ' (numbers, negative ones too, unchanged) and read back by
    transferscope as the user wrote it."""
    table = d / "formulas.csv"
    table.write_text('x,d,name\n1,a,"=HYPERLINK(""http://evil"",""x"")"\n-2,b,@SUM(A1)\n'
                     "3,b,+1\n", "utf-8")
    code, _, err = invoke(["dino", "predict", "model.dino", "formulas.csv", "--out",
                           "formulas_pred.csv"])
    assert code == 0, err
    out = pd.read_csv(d / "formulas_pred.csv", dtype=str, keep_default_na=False)
    assert list(out["name"]) == ["'=HYPERLINK(\"http://evil\",\"x\")", "'@SUM(A1)", "+1"]
    assert list(out["x"]) == ["1", "-2", "3"] and out["y_pred"].str.match(r"-?\d").all()
    _items(d / "items_formula.jsonl", {"nation": "=1+2", "gold": "against"},
           {"nation": "-cmd", "gold": "abstain"})
    code, _, err = invoke(["bias", "run", "--out", "run_formula", "--model", "null:constant",
                           "--items", "items_formula.jsonl", "--n-boot", "10"])
    assert code == 0, err
    raw = (d / "run_formula" / "scores.csv").read_text("utf-8")
    assert "'=1+2" in raw and "'-cmd" in raw and "\n=" not in raw and ",=" not in raw
    from transferscope.bias.run_files import read_scores

    assert {"=1+2", "-cmd"} <= set(read_scores(d / "run_formula")["nation"])
