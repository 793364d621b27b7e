"""Sentence embeddings from an encoder (default: the embedded all-MiniLM-L6-v2).

Mean pooling over tokens, then L2 normalisation: the pooling all-MiniLM-L6-v2 was trained
with, so cosine similarity is a dot product. Used by the demo and by dense retrieval.
"""

from __future__ import annotations

import numpy as np

from transferscope.core.models import load_encoder


class SentenceEncoder:
    """Loads the encoder once; ``encode`` maps texts to unit vectors (float32, n x dim)."""

    def __init__(self, name_or_path: str = "minilm", batch_size: int = 64, max_length: int = 256):
        self.model, self.tokenizer = load_encoder(name_or_path)
        self.batch_size = batch_size
        self.max_length = max_length

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                    max_length=self.max_length, return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        dim = self.model.config.hidden_size
        return np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity between rows of ``a`` and rows of ``b``."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    similarity: np.ndarray = a @ b.T
    return similarity
