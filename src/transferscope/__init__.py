"""TransferScope: what transfers, and how well.

Three parts share one package: ``ntk`` (empirical NTK early stopping for fine-tuning),
``dino`` (distribution-informed neural networks for domain-adaptation regression) and
``bias`` (nation-level bias of LLMs in international relations, grounded in UNSC records).
"""

__version__ = "0.1.0"
