"""What predates the #29 rules of tests/test_architecture.py, per part: each list only
shrinks (an entry that is fixed must be deleted; the test says which), and a new violation is
never added here. Per-part sections, so the parts' engineers edit apart."""

# ------------------------------------------------------------------ dataclasses without kw_only
POSITIONAL_DATACLASSES: dict[str, set[str]] = {
    "ntk": set(),
    "dino": {
        "datasets:Split",
        "datasets:Task",
        "inputs:DomainData",
        "io:DomainTable",
        "io:FeatureEncoder",
        "io:TableModel",
        "report:BenchFiles",
        "table_model:HoldoutScore",
        "table_model:TableFit",
        "table_model:TablePredictions",
    },
    "bias": {
        "backends.base:BackendStats",
        "backends.base:GenerationSettings",
        "backends.base:Reply",
        "backends.factory:BackendOptions",
        "calibrate:PowerResult",
        "data.html_table:HtmlRow",
        "data.raw_meetings:MeetingOutcome",
        "data.raw_meetings:MeetingParse",
        "data.raw_meetings:MeetingRow",
        "data.raw_meetings:Tally",
        "data.raw_texts:ResolutionText",
        "data.raw_vetoes:PageVeto",
        "data.raw_vetoes:VetoParse",
        "data.raw_vetoes:VetoRow",
        "data.record:Record",
        "data.separability:Separability",
        "debias.compare:ModelComparison",
        "debias.compare:RunItems",
        "debias.corpus:Passage",
        "debias.items:BeforeAfter",
        "debias.leakage:ItemScope",
        "debias.pipeline:DebiasConfig",
        "debias.pipeline:DebiasResult",
        "debias.pipeline:Debiased",
        "debias.reflexion:Attempt",
        "debias.reflexion:JudgeReply",
        "debias.reflexion:ReflexionSettings",
        "debias.reflexion:Trace",
        "debias.reflexion:Verdict",
        "debias.retrieval:Hit",
        "evaluate:Evaluation",
        "evaluate:RunConfig",
        "probes.base:Answer",
        "probes.base:Item",
        "show:RunView",
    },
}

# ------------------------------------------------------------------ public configs/estimators
# whose parameters are not all declared (core.params.Spec) and checked (Validated/…Estimator)
UNGUARDED_PARAMETERS: dict[str, set[str]] = {
    "ntk": set(),
    "dino": {
        "AdaptiveGP",
        "AuthorsDINO",  # the four below came with #30 while #29 converted other parts
        "CoralGP",
        "DINORegressor",
        "DomainMeanGP",
        "DomainRegressor",
        "FeatureAugmentedGP",
        "FineTunedMLP",
        "KMMGP",
        "PooledDomainAdapter",
        "PooledGP",
        "PooledRidge",
        "SourceOnlyGP",
        "TargetOnlyGP",
        "TargetRidge",
    },
    "bias": {
        "BackendOptions",
        "DebiasConfig",
        "GenerationSettings",
        "RunConfig",
    },
}

# ------------------------------------------------------------------ command-line modules
# functions that compute (arithmetic, sums, sorting) instead of printing a computed result
CLI_COMPUTATIONS: dict[str, set[str]] = {
    "ntk": set(),
    "dino": set(),
    "bias": set(),
}

# modules of its part a CLI may import besides the public API: the light modules that declare
# the command's options (configs), never the computing ones
CLI_OPTION_MODULES: dict[str, set[str]] = {
    "ntk": {"options"},
    "dino": set(),
    "bias": set(),
}

# what each part's CLI imports today from its part beyond the public API and the option modules
CLI_PRIVATE_IMPORTS: dict[str, set[str]] = {
    "ntk": {
        "cli -> data",
        "cli -> experiments",
        "cli -> preflight",
    },
    "dino": {
        "cli -> evaluation",
        "cli -> preflight",
        "cli -> report",
        "cli -> table_model",
    },
    "bias": {
        "cli -> adapters.unbench",
        "cli -> items",
        "cli -> preflight",
        "cli -> show",
    },
}
