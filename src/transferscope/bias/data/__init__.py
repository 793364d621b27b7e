"""The UNSC record: build it from raw public files, load the shipped copy, add full vote data.

The leak check on the drafts' wording (:mod:`.separability`, scikit-learn) is imported from its
module where it is used, so that loading the record does not load scikit-learn."""

from transferscope.bias.data.builder import build_data, build_record
from transferscope.bias.data.external_votes import load_crunsc_csv, load_dhl_voting_csv, merge_votes
from transferscope.bias.data.members import P5, canonical_member, seat_holder
from transferscope.bias.data.record import Record, derive_p5_votes, load_record, save_record

__all__ = ["P5", "Record", "build_data", "build_record", "canonical_member", "derive_p5_votes",
           "load_crunsc_csv", "load_dhl_voting_csv", "load_record", "merge_votes",
           "save_record", "seat_holder"]
