"""The probe registry: test names -> probe classes (like lm-eval-harness's task registry)."""

from __future__ import annotations

from transferscope.bias.probes.association import AssociationTest
from transferscope.bias.probes.base import Probe
from transferscope.bias.probes.directqa import DirectQA
from transferscope.bias.probes.vote import VoteSimulation
from transferscope.core.errors import InputError

PROBES: dict[str, type[Probe]] = {
    DirectQA.name: DirectQA,
    AssociationTest.name: AssociationTest,
    VoteSimulation.name: VoteSimulation,
}


def get_probe(name: str) -> Probe:
    """The probe registered under ``name``; an unknown name is one clear error."""
    key = name.strip().lower()
    if key not in PROBES:
        raise InputError(f"--tests: test name = {name!r}: expected one of {', '.join(PROBES)}")
    return PROBES[key]()


def parse_tests(spec: str) -> list[Probe]:
    """``"directqa,association,vote"`` -> the probes, in order, each once."""
    names = [n for n in (part.strip() for part in spec.split(",")) if n]
    if not names:
        raise InputError(f"--tests = {spec!r}: expected a comma-separated list of "
                         f"{', '.join(PROBES)}")
    return [get_probe(n) for n in dict.fromkeys(names)]
