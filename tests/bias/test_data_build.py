"""The builder and loaders, on files written in the raw sources' exact layouts."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from transferscope.bias.data import (
    build_record,
    load_crunsc_csv,
    load_dhl_voting_csv,
    load_record,
    merge_votes,
    save_record,
)
from transferscope.bias.data.builder import clean_agenda, number_resolutions, tally_problem
from transferscope.bias.data.raw_meetings import MeetingOutcome, Tally, parse_outcome_cell
from transferscope.core.errors import InputError

RAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "unsc"
HEADER = ("year,date,month,draft,meeting_record,agenda_item,crisis_topic,region,member_veto1,"
          "member_veto2,member_veto3,single_veto,multiple_vetoes,China,France,Russia,USSR,USA,UK,"
          "russia_china,usa_uk,usa_france,usa_france_uk,france_uk\n")
ROW_172 = ("2017,2/28/2017,2,S/2017/172,S/PV.7893,Middle East,Syria,Middle East,Russia,China,,0,1,"
           "1,0,1,0,0,0,1,0,0,0,0\n")
ROW_1960 = ("1960,12/13/1960,12,S/4578/Rev.1,S/PV.920,Situation in the Congo,Congo,Central Africa,"
            "USSR,,,1,0,0,0,0,1,0,0,0,0,0,0,0\n")
PAGE = """<table><tr><th>Date</th><th>Draft</th><th>Record</th><th>Agenda</th><th>Member</th></tr>
<tr><td>28 February 2017</td>
<td><a href="x">S/2017/172</a></td><td><a href="x">S/PV.7893</a></td>
<td>The situation in the Middle East</td>
<td>China</br>Russian Federation</td></tr>
<tr><td>13 December 1960</td><td>S/4578/Rev.1</td><td>S/PV.920</td><td>Congo</td><td>USSR</td></tr>
</table>"""
MEETINGS_2017 = """<table><tr><th>Meeting<br>Record</th><th>Date</th><th>Press<br>Release</th>
<th>Topic</th><th>Security Council<br> Outcome / Vote</th></tr>
<tr><td>S/PV.8151</td><td>22 December</td><td>SC/13141</td><td>Non-proliferation - DPRK</td>
<td><a href="x">S/RES/2397 (2017)</a><br> 15-0-0</td></tr>
<tr><td>S/PV.8000</td><td>2 August</td><td>SC/1</td><td>Mali</td>
<td>S/RES/2364 (2017)<br>14-0-1</td></tr>
<tr><td>S/PV.7893</td><td>28 February</td><td>SC/12737</td><td>The situation in the Middle East</td>
<td>Draft resolution <a href="x">S/2017/172</a> vetoed by China and Russian Federation </br>9-3-3</br>
</tr>
</table>"""
MEETINGS_1960 = """<table><tr><th>Meeting Record</th><th>Date</th><th>Topic</th>
<th>Security Council Outcome / Vote</th></tr>
<tr><td>S/PV.920</td><td>13 December</td><td>Situation in the Republic of the Congo</td>
<td>Draft resolution S/4578/Rev.1 vetoed by USSR 7-3-1</td></tr>
<tr><td>S/PV.850</td><td>26 January</td><td>Admission of new Members</td>
<td>S/RES/133 (1960) 11-0-0</td></tr>
</table>"""


def write_raw(root: Path, veto_rows: str = ROW_1960 + ROW_172) -> Path:
    (root / "vetoes").mkdir(parents=True)
    (root / "meetings").mkdir()
    (root / "resolutions_en").mkdir()
    (root / "vetoes" / "unsc_vetoes_1946_sept2022.csv").write_text(HEADER + veto_rows)
    (root / "vetoes" / "dhl_veto_list.html").write_text(PAGE)
    (root / "meetings" / "scact2017_table_en.html").write_text(MEETINGS_2017)
    (root / "meetings" / "scact1960_table_en.html").write_text(MEETINGS_1960)
    (root / "resolutions_en" / "S_RES_0133_1960_EN_GOLD.txt").write_text(
        "133 (1960). Resolution of 26 January 1960\n[S/4263]\n\nThe Security Council, ...")
    return root


def test_build_small_raw_folder(tmp_path):
    rec = build_record(write_raw(tmp_path / "raw"))
    d = rec.drafts.set_index("draft_id")
    assert list(d["outcome"].value_counts().sort_index().items()) == [("adopted", 3),
                                                                      ("vetoed", 2)]
    assert d.loc["S/2017/172", "tally_text"] == "9-3-3"
    assert d.loc["S/4578/Rev.1", "tally_text"] == "7-3-1"
    assert d.loc["S/RES/133 (1960)", "draft_symbol"] == "S/4263"
    votes = {(r.draft_id, r.member): r.vote for r in rec.p5_votes.itertuples()}
    assert votes[("S/RES/133 (1960)", "France")] == "in favour"  # 11-0-0 with 11 members
    assert all(votes[("S/RES/2364 (2017)", m)] == "unknown" for m in
               ("China", "France", "Russia", "United Kingdom", "United States"))
    assert votes[("S/4578/Rev.1", "Russia")] == "against"
    assert votes[("S/4578/Rev.1", "France")] == "unknown"
    ussr = rec.p5_votes[(rec.p5_votes.draft_id == "S/4578/Rev.1")
                        & (rec.p5_votes.member == "Russia")].iloc[0]
    assert ussr.seat_holder == "USSR" and ussr.ussr_era
    assert rec.build["counts"]["veto_csv_rows"] == 2
    assert rec.build["reconciliation"] == []


def test_round_trip(tmp_path):
    rec = build_record(write_raw(tmp_path / "raw"))
    save_record(rec, tmp_path / "out")
    back = load_record(tmp_path / "out")
    pd.testing.assert_frame_equal(back.drafts, rec.drafts)
    pd.testing.assert_frame_equal(back.p5_votes, rec.p5_votes)


def test_malformed_veto_csv_names_file_and_line(tmp_path):
    bad = ROW_1960 + ROW_172.replace("2/28/2017", "28/02/2017")
    raw = write_raw(tmp_path / "raw", bad)
    with pytest.raises(InputError) as err:
        build_record(raw)
    msg = str(err.value)
    assert "unsc_vetoes_1946_sept2022.csv:3" in msg and "date" in msg and "28/02/2017" in msg


def test_unknown_vetoer_is_an_error(tmp_path):
    raw = write_raw(tmp_path / "raw", ROW_172.replace(",Russia,China,", ",Russia,Narnia,"))
    with pytest.raises(InputError, match=r"csv:2: member_veto = 'Narnia'"):
        build_record(raw)


def test_missing_raw_part(tmp_path):
    raw = write_raw(tmp_path / "raw")
    shutil.rmtree(raw / "meetings")
    with pytest.raises(InputError, match="meetings is missing"):
        build_record(raw)


def test_outcome_cell_forms():
    kinds = parse_outcome_cell("S/RES/14 (1946) 9-0-2 S/RES/15 (1946) adopted unanimously")
    assert [(k, s, t.text) for k, s, _, t, _ in kinds] == [
        ("adopted", "S/RES/14 (1946)", "9-0-2"), ("adopted", "S/RES/15 (1946)",
                                                  "adopted unanimously")]
    veto = parse_outcome_cell("Draft resolution S/12211 vetoed by France, UK and USA 10-3-2")
    assert veto[0][0] == "vetoed" and set(veto[0][4]) == {"France", "United Kingdom",
                                                          "United States"}
    assert veto[0][3].text == "10-3-2"
    failed = parse_outcome_cell("Draft resolution S/2018/1 not adopted 5-4-6")
    assert failed[0][:2] == ("not adopted", "S/2018/1")


DHL_HEADER = ("undl_id,ms_code,ms_name,ms_vote,date,resolution,draft,meeting,description,agenda,"
              "subjects,vote_note,modality,total_yes,total_no,total_abstentions,total_non_voting,"
              "total_ms,undl_link\n")


def _dhl_row(code, name, vote, resolution="S/RES/2640(2022)"):
    return (f'3979417,{code},{name},{vote},2022-06-29,{resolution},S/2022/515,S/PV.9082,'
            f'"Mali",Mali,PEACEKEEPING,,Recorded,13,0,2,0,15,https://x\n')


def test_dhl_voting_csv_fills_unknown_votes(tmp_path):
    path = tmp_path / "2022_sc_voting.csv"
    path.write_text(DHL_HEADER + _dhl_row("CHN", "CHINA", "A") + _dhl_row("FRA", "FRANCE", "Y")
                    + _dhl_row("RUS", "RUSSIAN FEDERATION", "A")
                    + _dhl_row("GBR", "UNITED KINGDOM", "Y") + _dhl_row("USA", "UNITED STATES", "Y")
                    + _dhl_row("ALB", "ALBANIA", "Y")
                    + _dhl_row("FRA", "FRANCE", "N", "S/RES/2397(2017)"))
    votes = load_dhl_voting_csv(path)
    assert len(votes) == 6  # Albania is not a permanent member
    rec, conflicts = merge_votes(load_record(), votes)
    r2640 = rec.p5_votes[rec.p5_votes.draft_id == "S/RES/2640 (2022)"].set_index("member")
    assert r2640.loc["China", "vote"] == "abstain" and r2640.loc["France", "vote"] == "in favour"
    assert "2022_sc_voting.csv:2" in r2640.loc["China", "provenance"]
    assert len(conflicts) == 1 and "S/RES/2397 (2017) France" in conflicts[0]
    r2397 = rec.p5_votes[(rec.p5_votes.draft_id == "S/RES/2397 (2017)")
                         & (rec.p5_votes.member == "France")]
    assert r2397["vote"].item() == "in favour"  # the record's vote is kept


def test_dhl_bad_vote_code(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text(DHL_HEADER + _dhl_row("CHN", "CHINA", "Q"))
    with pytest.raises(InputError, match=r"v.csv:2: ms_vote = 'Q'"):
        load_dhl_voting_csv(path)


def test_crunsc_csv(tmp_path):
    path = tmp_path / "CR-UNSC.csv"
    frame = pd.DataFrame([
        {"symbol": "S/RES/2640 (2022)", "vote_detail": "Y ALBANIA | A CHINA | Y FRANCE | "
         "A RUSSIAN FEDERATION | Y UNITED KINGDOM | Y UNITED STATES",
         "vote_yes": "13", "vote_no": "0", "vote_abstention": "2", "vote_total": "15"},
        {"symbol": "S/RES/2364 (2017)", "vote_detail": "NA", "vote_yes": "15", "vote_no": "0",
         "vote_abstention": "0", "vote_total": "15"},
        {"symbol": "S/RES/2365 (2017)", "vote_detail": "NA", "vote_yes": "14", "vote_no": "0",
         "vote_abstention": "1", "vote_total": "15"},
    ])
    frame.to_csv(path, index=False)
    votes = load_crunsc_csv(path)
    got = {(r.resolution_number, r.member): r.vote for r in votes.itertuples()}
    assert got[(2640, "Russia")] == "abstain" and got[(2640, "United States")] == "in favour"
    assert got[(2364, "China")] == "in favour"
    assert not any(n == 2365 for n, _ in got)


def _adoption(number, date, topic="Topic", tally="15-0-0", line=1):
    yes, no, abstain = (int(x) for x in tally.split("-"))
    return MeetingOutcome(kind="adopted", symbol=f"S/RES/{number} ({date.year})", number=number,
                          tally=Tally(yes=yes, no=no, abstain=abstain,
                                      text=tally), vetoers=(), meeting_record="S/PV.1", date=date, topic=topic,
                          source=f"scact{date.year}.html:{line}")


def test_a_mislabelled_resolution_takes_the_one_number_its_date_fits():
    """The 1990 table's pattern, by hand: 662 on 9 Aug, "663" twice (14 Aug and 13 Sep), 664
    on 18 Aug, 665 on 25 Aug, 667 on 16 Sep, 666 absent. 14 Aug lies between 662 and 664, so
    that row keeps 663; 13 Sep lies only between 665 and 667: it is 666. A row repeated word
    for word is kept once; a clash no date can settle is reported and nothing guessed."""
    d = dt.date
    rows = [_adoption(662, d(1990, 8, 9)), _adoption(663, d(1990, 9, 13), "Iraq", "13-2-0", 7),
            _adoption(664, d(1990, 8, 18)), _adoption(663, d(1990, 8, 14), "Members", line=9),
            _adoption(665, d(1990, 8, 25)), _adoption(667, d(1990, 9, 16)),
            _adoption(667, d(1990, 9, 16))]
    kept, notes = number_resolutions(rows)
    assert sorted(kept) == [662, 663, 664, 665, 666, 667]
    assert kept[663].date == d(1990, 8, 14) and kept[663].topic == "Members"
    assert kept[666].date == d(1990, 9, 13) and kept[666].symbol == "S/RES/666 (1990)"
    assert kept[666].tally.text == "13-2-0"
    assert any("repeats" in n for n in notes) and any("recorded as S/RES/666" in n
                                                       for n in notes)
    clash = [_adoption(5, d(1990, 1, 1)), _adoption(5, d(1990, 1, 2), "Other")]
    kept, notes = number_resolutions(clash)
    assert kept == {} and len(notes) == 2 and all("not kept" in n for n in notes)


def test_agenda_wording_rule_and_impossible_tallies():
    assert clean_agenda("Middle East situation, including the Palestinian question (concerning "
                        "the United States recognition of Jerusalem as Israeli capital)") == \
        "Middle East situation, including the Palestinian question"
    assert clean_agenda("Letter dated 1 May (S/1 (a) and S/2) from Chile") == \
        "Letter dated 1 May from Chile"
    assert clean_agenda("Letter, 22 December 1979, from United States of America S/13735") == \
        "Letter, 22 December 1979, from United States of America"
    assert tally_problem(13, 0, 2, 2, 15) == "0 negative vote(s) for 2 vetoing member(s)"
    assert tally_problem(13, 2, 1, 2, 15) == "16 votes cast by a Council of 15"
    assert tally_problem(13, 2, 0, 2, 15) is None and tally_problem(None, None, None, 1, 15) \
        is None


@pytest.fixture(scope="module")
def real_build():
    if not RAW.exists():
        pytest.skip("raw records (../shared/data/unsc) not present")
    return build_record(RAW)


def _raw_line(relative: str, needle: str) -> str:
    lines = (RAW / relative).read_text(encoding="utf-8", errors="replace").splitlines()
    return next(line for line in lines if needle in line)


def test_record_errors_fixed_against_the_raw_files(real_build):
    """Each error the first build made, checked against the raw files themselves."""
    d = real_build.drafts.set_index("draft_id")
    # the 1990 table lists "S/RES/663 (1990)" twice; the CR-UNSC texts date 663 and 666
    for number, year, day, tally in ((663, 1990, "14 August 1990", "15-0-0"),
                                     (666, 1990, "13 September 1990", "13-2-0"),
                                     (695, 1991, "30 May 1991", "15-0-0"),
                                     (701, 1991, "31 July 1991", "15-0-0")):
        text = (RAW / "resolutions_en" / f"S_RES_{number:04d}_{year}_EN_GOLD.txt").read_text()
        assert f"of {day}" in text[:200], number
        row = d.loc[f"S/RES/{number} ({year})"]
        assert row["date"] == pd.Timestamp(day) and row["tally_text"] == tally
    # resolution 1969 (2011) is written with a space inside the brackets in the raw table
    assert "S/RES/1969 (2011</a>)" in _raw_line("meetings/scact2011_table_en.html", "1969 (2011")
    assert d.loc["S/RES/1969 (2011)", "date"] == pd.Timestamp("2011-02-24")
    assert real_build.build["missing_resolution_numbers"] == []
    # S/2001/270: the CSV says 12 April; the page "27-28 March" and the table 27 March 9-1-4
    assert "4/12/2001" in _raw_line("vetoes/unsc_vetoes_1946_sept2022.csv", "S/2001/270")
    assert "27-28 March 2001" in (RAW / "vetoes" / "dhl_veto_list.html").read_text()
    s270 = d.loc["S/2001/270"]
    assert s270["date"] == pd.Timestamp("2001-03-27") and s270["tally_text"] == "9-1-4"
    # S/2022/431: the table's 13-0-2 cannot hold two vetoes: reported, not used
    assert "13-0-2" in (RAW / "meetings" / "scact2022_table_en.html").read_text()
    assert d.loc["S/2022/431", "tally_text"] == "" and pd.isna(d.loc["S/2022/431", "tally_no"])
    assert any("S/2022/431 tally 13-0-2 is impossible" in p for p in real_build.build["problems"])
    votes = real_build.p5_votes[real_build.p5_votes["draft_id"] == "S/2022/431"]
    assert dict(zip(votes["member"], votes["vote"], strict=True)) == {
        "China": "against", "Russia": "against", "France": "unknown",
        "United Kingdom": "unknown", "United States": "unknown"}
    # vetoed drafts whose meeting rows carry a tally the first parser missed (#26): a symbol in
    # brackets (2014), corrigenda and addenda after it (1970, 1947), a veto written "not adopted"
    for symbol, year, raw, tally in (
            ("S/2014/189", 2014, "( S/2014/189 ) vetoed by Russian Federation", "13-1-1"),
            ("S/9696 and Corr.1 & 2", 1970, "S/9696 and Corr.1 and Corr.2 vetoed by UK and USA",
             "9-2-4"),
            ("S/471 and S/471/Add.1", 1947, "S/471 & Add.1 vetoed by USSR", "9-2-0"),
            ("S/5134", 1962, "S/5134 not adopted", "7-2-2")):
        table = " ".join((RAW / "meetings" / f"scact{year}_table_en.html").read_text(
            encoding="utf-8", errors="replace").split())
        plain = " ".join(re.sub(r"<[^>]+>", " ", table).split())
        assert f"{raw} {tally}" in plain, symbol
        row = d.loc[symbol]
        assert row["tally_text"] == tally and f"meetings tally {tally}" in row["source"]
        yes, no, abstain = (int(v) for v in tally.split("-"))
        assert (row["tally_yes"], row["tally_no"], row["tally_abstain"]) == (yes, no, abstain)
    # one wording: the meeting table's for every draft it lists, the CSV's editors' note gone
    s1060 = d.loc["S/2017/1060"]
    assert "concerning" in s1060["veto_csv_agenda"] and "concerning" not in s1060["agenda_item"]
    assert s1060["agenda_item"] == ("The situation in the Middle East, including the "
                                    "Palestinian question")
    vetoed = d[d["outcome"] == "vetoed"]
    from_csv = vetoed[~vetoed["agenda_source"].str.startswith("meetings/")]
    assert list(from_csv.index) == ["S/2022/538"]  # after the meeting tables end (June 2022)
    assert not d["agenda_item"].str.contains(r"[()]|\bS/\d").any()


def test_build_from_real_raw_folder(real_build):
    rec = real_build
    counts = rec.build["counts"]
    assert counts["veto_csv_rows"] == 214 and counts["veto_csv_physical_lines"] == 217
    assert counts["drafts_by_outcome"]["vetoed"] == 214
    notes = " ".join(rec.build["reconciliation"])
    assert "S/2022/538" in notes and "S/PV.49" in notes
    shipped = load_record()
    pd.testing.assert_frame_equal(rec.drafts, shipped.drafts)
