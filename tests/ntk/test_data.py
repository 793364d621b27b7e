"""Built-in lexicon tasks and user files: hand-checked words, counts and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.ntk import data


def test_lexicons_hold_hand_checked_words():
    vader, afinn = data.vader_ratings(), data.afinn_scores()
    # published ratings: VADER 'good' 1.9, 'horrible' -2.5; AFINN-165 'good' 3, 'horrible' -3
    assert vader["good"] == pytest.approx(1.9) and vader["horrible"] == pytest.approx(-2.5)
    assert afinn["good"] == 3 and afinn["horrible"] == -3
    assert all(w.isalpha() and w.islower() for w in list(vader) + list(afinn))
    assert len(vader) > 5000 and len(afinn) > 3000


def test_sentiment_words_labels_follow_the_raters():
    task = data.sentiment_words()
    label = dict(zip(task.texts, task.targets, strict=True))
    for word in ("good", "love", "wonderful", "excellent"):
        assert label[word] == 1.0
    for word in ("horrible", "hate", "terrible", "awful"):
        assert label[word] == -1.0
    counts = task.counts()
    assert counts["positive"] > 800 and counts["negative"] > 1200
    vader, afinn = data.vader_ratings(), data.afinn_scores()
    for word, target in label.items():
        signs = {np.sign(s) for s in (vader.get(word), afinn.get(word)) if s is not None}
        assert signs == {target}  # no word the two lexicons disagree on


def test_balanced_seeded_sample():
    task = data.sentiment_words()
    a = data.sample_examples(task, 40, seed=3)
    b = data.sample_examples(task, 40, seed=3)
    c = data.sample_examples(task, 40, seed=4)
    assert a.texts == b.texts and a.texts != c.texts
    assert (a.targets > 0).sum() == 20 and (a.targets < 0).sum() == 20
    assert len(set(a.texts)) == 40
    label = dict(zip(task.texts, task.targets, strict=True))
    assert all(label[t] == y for t, y in zip(a.texts, a.targets, strict=True))


def test_n_larger_than_the_data_is_one_line():
    small = data.LabeledTexts(texts=("a", "b", "c"), targets=np.array([1.0, -1.0, -1.0]),
                              class_names=("neg", "pos"), source="toy")
    with pytest.raises(InputError, match=r"--n: n = 10: expected at most 3"):
        data.sample_examples(small, 10)
    with pytest.raises(InputError, match="balanced sample needs 2 pos"):
        data.sample_examples(small, 3)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(InputError, match="sentiment-words"):
        data.get_task("imdb")


def test_registry_is_extensible():
    extra = data.BuiltinTask(name="test-extra", description="two words", template="{text}:",
                             label_words=("yes", "no"),
                             load=lambda: data.LabeledTexts(texts=("x", "y"),
                                                            targets=np.array([1.0, -1.0]),
                                                       class_names=("no", "yes"), source="test"))
    data.register_task(extra)
    try:
        assert data.get_task("test-extra").load().texts == ("x", "y")
        with pytest.raises(ValueError):
            data.register_task(extra)
    finally:
        del data.TASKS["test-extra"]


def test_csv_and_jsonl_files(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text('sentence,y\n"great, really",1\nbad,0\nfine,1\n')
    loaded = data.load_labeled_file(csv, "sentence", "y")
    assert loaded.texts == ("great, really", "bad", "fine")
    assert loaded.targets.tolist() == [1.0, -1.0, 1.0]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in (
        {"text": "ok", "label": "pos"}, {"text": "no", "label": "neg"})) + "\n")
    assert data.load_labeled_file(jsonl).targets.tolist() == [1.0, -1.0]
    other = tmp_path / "v.csv"
    other.write_text("text,label\nresolution A,adopted\nresolution B,vetoed\n")
    with pytest.raises(InputError, match="--positive-label"):
        data.load_labeled_file(other)
    assert data.load_labeled_file(other, positive_label="vetoed").targets.tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("content,match", [
    (None, r"--data .*missing\.csv: no such file"),
    ("text,label\na,1\nb,\n", r"row 2: column 'label' is empty \(1 of 2"),
    ("text,label\na,1\nb,0\nc,2\n", r"3 distinct labels \['0', '1', '2'\]: expected exactly two"),
    ("text,label\na,1\na,1\n", r"1 distinct labels"),
    ("words,label\na,1\nb,0\n", r"--text-col = 'text': expected one of its columns"),
    ("text,label\n,1\nb,0\n", r"row 1: column 'text' is empty"),
])
def test_bad_files_give_one_clear_line(tmp_path, content, match):
    path = tmp_path / "missing.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        data.load_labeled_file(path)
    assert "\n" not in str(info.value)


def test_bad_jsonl_line_and_suffix(tmp_path):
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "a", "label": 1}\n{oops\n')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        data.load_labeled_file(bad)
    xlsx = tmp_path / "b.xlsx"
    xlsx.write_text("x")
    with pytest.raises(InputError, match=r"\.csv, \.tsv or \.jsonl"):
        data.load_labeled_file(xlsx)


def test_fit_sizes_shrinks_only_what_does_not_fit():
    # hand-checked: 16 + 24 fit 40; 320 + 64 on 40 keep test 40 * 64 // 384 = 6, train 34
    assert data.fit_sizes(40, 16, 24) == (16, 24)
    assert data.fit_sizes(40, 320, 64) == (34, 6)
    assert data.fit_sizes(40, 32, 24) == (23, 17)
    with pytest.raises(InputError, match="at least 8"):
        data.fit_sizes(6, 16, 24)
    unbalanced = data.LabeledTexts(texts=tuple("abcdefg"),
                                   targets=np.array([1, 1, 1, 1, 1, -1, -1.0]),
                                   class_names=["neg", "pos"], source="hand")
    assert data.balanced_capacity(unbalanced) == 4
