"""The builder and loaders, on files written in the raw sources' exact layouts."""

from __future__ import annotations

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
from transferscope.bias.data.raw_meetings import parse_outcome_cell
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


@pytest.mark.skipif(not RAW.exists(), reason="raw records (../shared/data/unsc) not present")
def test_build_from_real_raw_folder():
    rec = build_record(RAW)
    counts = rec.build["counts"]
    assert counts["veto_csv_rows"] == 214 and counts["veto_csv_physical_lines"] == 217
    assert counts["drafts_by_outcome"]["vetoed"] == 214
    notes = " ".join(rec.build["reconciliation"])
    assert "S/2022/538" in notes and "S/PV.49" in notes
    shipped = load_record()
    pd.testing.assert_frame_equal(rec.drafts, shipped.drafts)
