"""Adapters that turn other benchmarks' layouts into the items schema (:mod:`..items`)."""
