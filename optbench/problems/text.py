"""Real text that every Python ships: CPython's help topics (``pydoc_data.topics``), by character.

The topics (about 465,000 characters) are joined in the order of their names and cut into three
contiguous blocks: the first 80% for training, the next 10% for validation, the last 10% for test,
so no window of one block overlaps another. Characters map to a fixed alphabet of 97 tokens
(newline, the 95 printable ASCII characters, and one token for anything else), the same on every
Python. The text itself is not: it changes between Python versions, so :func:`load` gives its
SHA-256, which the results table records (``data_sha256``) beside the runs trained on it.
"""

from __future__ import annotations

import functools
import hashlib

import torch

from optbench.problems.costs import TEXT_VOCAB

Tensor = torch.Tensor
VOCAB = TEXT_VOCAB  # newline, ' ' to '~', and one token for every other character
SPLITS = (0.8, 0.1, 0.1)  # train, validation, test: contiguous blocks in this order


@functools.cache
def load() -> tuple[Tensor, str]:
    """The help topics as tokens (a 1-D LongTensor) and the SHA-256 of their text."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[name] for name in sorted(topics))
    codes = torch.tensor([_token(ch) for ch in text], dtype=torch.long)
    return codes, hashlib.sha256(text.encode()).hexdigest()


def _token(ch: str) -> int:
    if ch == "\n":
        return 0
    code = ord(ch)
    return code - 31 if 32 <= code <= 126 else VOCAB - 1


def blocks() -> dict[str, Tensor]:
    """The train, validation and test blocks of the token stream (contiguous, disjoint)."""
    codes, _ = load()
    n = len(codes)
    train_end, val_end = int(n * SPLITS[0]), int(n * (SPLITS[0] + SPLITS[1]))
    return {"train": codes[:train_end], "val": codes[train_end:val_end], "test": codes[val_end:]}


def windows(block: Tensor, count: int, length: int, gen: torch.Generator | None = None) -> Tensor:
    """``count`` windows of ``length`` tokens from ``block``: at offsets drawn with ``gen``, or
    evenly spaced over the block without one (the held-out windows: the same for every seed)."""
    last = len(block) - length
    if gen is None:
        starts = torch.linspace(0, last, count).round().long()
    else:
        starts = torch.randint(0, last + 1, (count,), generator=gen)
    return block[starts[:, None] + torch.arange(length)]
