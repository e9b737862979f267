"""Word-level tokenizer in Hugging Face ``tokenizers`` format (``tokenizer.json``).

The same file drives training (here) and query encoding in the service (which loads it with
``tokenizers`` alone), so a query is split into ids identically on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "[PAD]", "[UNK]"
MAX_TOKENS = 32


def build_tokenizer(texts: Iterable[str], max_tokens: int = MAX_TOKENS) -> Tokenizer:
    """Train a lower-cased word-level vocabulary on ``texts``; id 0 is padding, 1 unknown."""
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=[PAD, UNK]))
    configure(tok, max_tokens)
    return tok


def configure(tok: Tokenizer, max_tokens: int = MAX_TOKENS) -> Tokenizer:
    """Pad to the longest in a batch and truncate at ``max_tokens``."""
    tok.enable_padding(pad_id=tok.token_to_id(PAD), pad_token=PAD)
    tok.enable_truncation(max_length=max_tokens)
    return tok


def load_tokenizer(path: Path | str) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def encode(tok: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)``, both (B, L) int64, padded to the longest text."""
    enc = tok.encode_batch(texts)
    return np.array([e.ids for e in enc], np.int64), np.array([e.attention_mask for e in enc], np.int64)
