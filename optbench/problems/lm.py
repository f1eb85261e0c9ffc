"""``lm``: a small decoder-only transformer on a language whose optimum is known.

The corpus is a seeded random order-``k`` Markov source over ``vocab`` symbols: every ``k``-gram's
next-symbol distribution is drawn from a symmetric Dirichlet of ``concentration`` (small: a
predictable language). Its tables come from ``source_seed``, the same for every run seed; a run's
seed draws its sequences (training and validation) and its initialisation.

f* is exact: the expected next-token cross-entropy of the best causal predictor over a window of
``block_size`` tokens, the mean over positions of the source's conditional entropies
(:func:`optimum`): the entropy rate once ``k`` tokens of context exist, the lower-order conditional
entropies before (sequences start from the source's stationary distribution). It bounds the
*expected* loss, not the loss on a finite training sample (a model that memorises its sequences
goes below it). Hence the two regimes (option ``regime``):

- ``fresh`` (the default, as language models are pretrained: one pass over a stream): every step
  trains on new sequences, drawn from the run's seed and the step (:meth:`LanguageModel.draw`),
  so the training loss the table records (the next batch's, before the run trains on it) is an
  unbiased estimate of the expected loss, f* is its floor, and the problem declares it as its
  ``optimum``: suboptimality, time to target and ``loss - f*`` mean what they say. A batch's loss
  still scatters around its expectation (a standard error of a few hundredths of a nat for 32
  sequences of 16 tokens); paired seeds see the same batches, step for step.
- ``fixed``: ``n_train`` sequences drawn once and revisited every epoch; the training loss may go
  below f*, so the problem declares no optimum.

Either way it records ``val_loss`` on ``n_val`` held-out sequences of the same source and
``val_gap = val_loss - f*``, a true suboptimality.

The model: token and position embeddings, ``n_layer`` pre-norm blocks of causal self-attention
(``n_head`` heads) and a GELU MLP, a final norm and an untied output head. Loss: mean next-token
cross-entropy in nats, over every position of every sequence in the batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optbench.errors import InvalidValueError
from optbench.problems import checks, costs, text
from optbench.problems.base import Problem, resolve_dtype

Tensor = torch.Tensor


CORPORA = ("markov", "pydoc")
REGIMES = ("fresh", "fixed")
BATCH_SIZE = 32  # the problem's default batch (sequences): registered with it (optbench.registry.builtins)


class MarkovSource:
    """An order-``order`` Markov source over ``vocab`` symbols, its tables drawn from ``seed``."""

    def __init__(self, vocab: int, order: int, concentration: float, seed: int):
        rng = np.random.default_rng(seed)
        self.vocab, self.order = vocab, order
        self.table = rng.dirichlet(np.full(vocab, concentration), size=vocab**order)  # (states, vocab)
        self.stationary = self._stationary()
        self._start_cdf, self._cdf = np.cumsum(self.stationary), np.cumsum(self.table, axis=1)

    def _stationary(self) -> np.ndarray:
        """The stationary distribution over ``order``-grams (power iteration in float64)."""
        states = self.vocab**self.order
        pi = np.full(states, 1.0 / states)
        for _ in range(10_000):
            nxt = np.zeros(states)
            for s in range(states):
                shifted = (s * self.vocab) % states  # drop the oldest symbol, append each next one
                nxt[shifted : shifted + self.vocab] += pi[s] * self.table[s]
            if np.abs(nxt - pi).max() < 1e-15:
                break
            pi = nxt
        return nxt / nxt.sum()

    def marginal(self, length: int) -> np.ndarray:
        """The stationary distribution of the first ``length`` (<= order) symbols of a sequence."""
        grams = self.stationary.reshape((self.vocab,) * self.order)
        return grams.sum(axis=tuple(range(length, self.order))).reshape(-1) if length < self.order else self.stationary

    def sample(self, n: int, length: int, rng: np.random.Generator) -> Tensor:
        """``n`` sequences of ``length`` symbols, each started from the stationary distribution: each
        symbol by inverse CDF from one uniform draw of ``rng`` (numpy's, for speed: a fresh batch is
        drawn every step, and ``torch.multinomial`` cost as much as the step)."""
        states, total = self.vocab**self.order, max(length, self.order)
        u = rng.random((n, total + 1))
        start = np.minimum((u[:, :1] > self._start_cdf).sum(axis=1), states - 1)
        out = np.empty((n, total), dtype=np.int64)
        for i in range(self.order):  # the start state's symbols, oldest first
            out[:, i] = (start // self.vocab ** (self.order - 1 - i)) % self.vocab
        state = start
        for t in range(self.order, length):
            out[:, t] = np.minimum((u[:, t + 1 : t + 2] > self._cdf[state]).sum(axis=1), self.vocab - 1)
            state = (state * self.vocab) % states + out[:, t]
        return torch.from_numpy(out[:, :length])

    def conditional(self, context: Tensor) -> Tensor:
        """p(next symbol | the tokens so far), per row of ``context`` (n, t): the table once ``order``
        tokens are known, the stationary marginals' ratio before."""
        t = context.shape[1]
        if t >= self.order:
            state = torch.zeros(len(context), dtype=torch.long)
            for i in range(self.order):
                state = state * self.vocab + context[:, t - self.order + i]
            return torch.tensor(self.table)[state]
        joint = torch.tensor(self.marginal(t + 1)).reshape(-1, self.vocab)  # (vocab^t, vocab)
        index = torch.zeros(len(context), dtype=torch.long)
        for i in range(t):
            index = index * self.vocab + context[:, i]
        rows = joint[index]
        return rows / rows.sum(dim=1, keepdim=True)


def entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def optimum(source: MarkovSource, block_size: int) -> float:
    """f*: the mean over the ``block_size`` predicted positions of H(x_{t+1} | x_0..x_t), in nats."""
    rate = float(sum(source.stationary[s] * entropy(source.table[s]) for s in range(len(source.table))))
    terms = []
    for t in range(block_size):  # predicting token t+1 from t+1 tokens of context
        known = t + 1
        if known >= source.order:
            terms.append(rate)
        else:
            terms.append(entropy(source.marginal(known + 1)) - entropy(source.marginal(known)))
    return float(np.mean(terms))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.qkv, self.proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.fc, self.out = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)
        self.register_buffer("mask", torch.ones(block_size, block_size).tril().bool(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(c, dim=-1)
        q, k, v = (z.reshape(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.n_head)
        scores = scores.masked_fill(~self.mask[:t, :t], float("-inf"))  # causal: no look ahead
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(attended)
        return x + self.out(F.gelu(self.fc(self.ln_2(x))))


class GPT(nn.Module):
    """The model as a module: it initialises the parameters (and names them), and it is the
    reference that :func:`forward` computes (a test holds them equal)."""

    def __init__(self, vocab: int, block_size: int, n_layer: int, n_head: int, n_embd: int):
        super().__init__()
        self.token, self.position = nn.Embedding(vocab, n_embd), nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, block_size) for _ in range(n_layer))
        self.ln_f, self.head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.token(tokens) + self.position.weight[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


# The model as a function of its parameters, for one run (2-D weights) or K runs at once (each
# parameter and the tokens with a leading run axis): then batched matrix products, one kernel call
# for every run, where vmap would pay its dispatch on every one of some 200 operations a step. The
# two forms call kernels that give the same bits (a batched product's rows are the 2-D product's),
# so a stacked run is the run alone, bit for bit, and an optimizer that rounds (Muon orthogonalises
# in bfloat16) cannot magnify a difference.


def _norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt((centred**2).mean(dim=-1, keepdim=True) + eps) * weight.unsqueeze(-2) + bias.unsqueeze(
        -2
    )


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Rows (N, in) through (out, in) weights, or K runs' (K, N, in) through their (K, out, in)."""
    if weight.dim() == 2 and bias is not None:
        return F.linear(x, weight, bias)
    if weight.dim() == 2:  # a batch of one: mm's weight gradient is summed in another order than bmm's
        return torch.bmm(x[None], weight.T[None])[0]
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias[:, None], x, weight.transpose(1, 2))


def forward(params: dict[str, Tensor], tokens: Tensor, n_layer: int, n_head: int) -> Tensor:
    """Logits (B, T, vocab) of one run's model on tokens (B, T), or (K, B, T, vocab) of K runs'
    (``params`` stacked) on their tokens (K, B, T)."""
    *k, b, t = tokens.shape
    c = params["token.weight"].shape[-1]
    if k:
        x = torch.gather(params["token.weight"], 1, tokens.reshape(k[0], -1, 1).expand(-1, -1, c))
    else:
        x = F.embedding(tokens.reshape(-1), params["token.weight"])
    x = (x.reshape(*k, b, t, c) + params["position.weight"][..., :t, :].unsqueeze(-3)).reshape(*k, b * t, c)
    mask = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()
    hd, rows = c // n_head, (k[0] if k else 1) * b
    for i in range(n_layer):
        p = {name: params[f"blocks.{i}.{name}"] for name in _BLOCK}
        q, key, v = _linear(_norm(x, p["ln_1.weight"], p["ln_1.bias"]), p["qkv.weight"], p["qkv.bias"]).split(c, -1)
        q, key, v = (z.reshape(rows, t, n_head, hd).transpose(1, 2) for z in (q, key, v))
        scores = ((q @ key.transpose(-2, -1)) / math.sqrt(hd)).masked_fill(~mask, float("-inf"))  # causal
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(*k, b * t, c)
        x = x + _linear(attended, p["proj.weight"], p["proj.bias"])
        hidden = F.gelu(_linear(_norm(x, p["ln_2.weight"], p["ln_2.bias"]), p["fc.weight"], p["fc.bias"]))
        x = x + _linear(hidden, p["out.weight"], p["out.bias"])
    return _linear(_norm(x, params["ln_f.weight"], params["ln_f.bias"]), params["head.weight"]).reshape(*k, b, t, -1)


_BLOCK = [f"{layer}.{w}" for layer in ("ln_1", "ln_2", "qkv", "proj", "fc", "out") for w in ("weight", "bias")]


class LanguageModel(Problem):
    """Next-token prediction with a small GPT: on a Markov source whose optimum is known, or on
    CPython's help text.

    Options: ``regime`` (``fresh``: new sequences every step; ``fixed``: ``n_train`` of them every
    epoch; see the module's docstring), ``corpus`` (``markov`` or ``pydoc``:
    :mod:`optbench.problems.text`), for the Markov source only ``vocab`` (8), ``order`` (1),
    ``concentration`` (0.3) and ``source_seed`` (0: the language; the run seed draws the text;
    pydoc text has its own 97 tokens), ``n_train`` and
    ``n_val`` sequences (1024, 256), ``block_size`` (16), ``n_layer`` (1), ``n_head`` (2),
    ``n_embd`` (32), ``dtype``. An epoch is ``n_train`` sequences; a run's default batch is
    :data:`BATCH_SIZE` sequences, ``block_size`` tokens each (the table's ``tokens`` count them).
    Records ``val_loss`` on held-out sequences; on the Markov source ``val_gap``, its distance to
    f* (``f_star``, the ``optimum`` of the fresh regime); on pydoc text ``test_loss`` on the test
    block, and the text's hash (``data_sha256``). Fresh pydoc text is windows at new offsets of
    the training block every step: a finite text, so no optimum either way.

    >>> p = LanguageModel(seed=0)
    >>> p.n_train, round(p.f_star, 4), p.optimum == p.f_star, LanguageModel(regime="fixed").optimum
    (1024, 1.4242, True, None)
    """

    cost = staticmethod(costs.lm)  # torch-free: read before torch loads

    def __init__(
        self,
        seed: int = 0,
        *,
        regime: str = "fresh",
        corpus: str = "markov",
        vocab: int = 8,
        order: int = 1,
        concentration: float = 0.3,
        source_seed: int = 0,
        n_train: int = 1024,
        n_val: int = 256,
        block_size: int = 16,
        n_layer: int = 1,
        n_head: int = 2,
        n_embd: int = 32,
        dtype: str = "float32",
    ):
        checks.choice("lm", "corpus", corpus, CORPORA)
        checks.choice("lm", "regime", regime, REGIMES)
        for name, value, low in (("vocab", vocab, 2), ("order", order, 1), ("n_train", n_train, 1)):
            checks.whole("lm", name, value, low)
        for name, value in (("n_val", n_val), ("block_size", block_size), ("n_layer", n_layer), ("n_head", n_head)):
            checks.whole("lm", name, value, 1)
        checks.whole("lm", "n_embd", n_embd, n_head)
        if n_embd % n_head:
            raise InvalidValueError(f"lm n_embd={n_embd} is not a multiple of n_head={n_head}")
        if corpus == "markov" and vocab**order > 4096:
            raise InvalidValueError(f"lm vocab**order = {vocab**order} states is too many; expected at most 4096")
        self.concentration = checks.real("lm", "concentration", concentration, 0.0, above=True)
        dt = resolve_dtype(dtype)
        gen = torch.Generator().manual_seed(seed)  # pydoc's windows; the Markov source samples with numpy
        self.f_star: float | None = None
        self.source: MarkovSource | None = None
        self.block_size = block_size
        if corpus == "markov":
            self.source = MarkovSource(vocab, order, self.concentration, source_seed)
            sample = self.source.sample(n_train + n_val, block_size + 1, np.random.default_rng(seed))
            self.data = {"x": sample[:n_train], "x_val": sample[n_train:]}
            self.f_star = optimum(self.source, block_size)  # of the expected loss: see the module's docstring
        else:  # the seed draws the training windows; held-out windows are the same for every seed
            vocab, split = text.VOCAB, text.blocks()
            longest = min(len(b) for b in split.values()) - 1
            if block_size > longest:
                raise InvalidValueError(f"lm block_size={block_size} is too long for the pydoc text; at most {longest}")
            self.data = {
                "x": text.windows(split["train"], n_train, block_size + 1, gen),
                "x_val": text.windows(split["val"], n_val, block_size + 1),
                "x_test": text.windows(split["test"], n_val, block_size + 1),
            }
            self.provenance = {"sha256": text.load()[1]}
        with torch.random.fork_rng(devices=[]):  # initialisation from the seed, global RNG untouched
            torch.default_generator.manual_seed(seed)
            self.model = GPT(vocab, block_size, n_layer, n_head, n_embd).to(dt)
        self.params = dict(self.model.named_parameters())
        self.n_layer, self.n_head = n_layer, n_head
        # the input and output layers; the blocks' 2-D weights are hidden matrices, the rest vectors
        self.roles = {"token.weight": "embedding", "position.weight": "embedding", "head.weight": "head"}
        self.n_train = n_train
        self.tokens_per_example = block_size  # the positions a sequence's loss predicts
        if regime == "fresh":
            self.draw = self._draw
            self.optimum = self.f_star  # the expected loss's floor; the training loss now estimates it

    def _draw(self, seed: int, step: int, size: int) -> dict[str, Tensor]:
        """Step ``step``'s training batch of run ``seed``: ``size`` new sequences of the source (or
        windows of the training text), from a generator seeded by (seed, step) alone."""
        key = np.random.SeedSequence(seed, spawn_key=(step,))  # the seed's step-th child stream
        if self.source is not None:
            return {"x": self.source.sample(size, self.block_size + 1, np.random.default_rng(key))}
        gen = torch.Generator().manual_seed(int(key.generate_state(1, np.uint64)[0] >> 1))
        return {"x": text.windows(text.blocks()["train"], size, self.block_size + 1, gen)}

    def _losses(self, params: dict[str, Tensor], seqs: Tensor) -> Tensor:
        """Mean next-token cross-entropy on sequences ``seqs``: one run's (B, block + 1), a 0-d
        tensor, or each of K runs' on its own (K, B, block + 1), shape (K,)."""
        logits = forward(params, seqs[..., :-1], self.n_layer, self.n_head)
        each = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seqs[..., 1:].reshape(-1), reduction="none")
        return each.reshape(len(seqs) if seqs.dim() == 3 else 1, -1).mean(dim=1).reshape(seqs.shape[:-2])

    def stacked_loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        seqs = data["x"]
        if idx is not None:  # each run's own batch of rows
            seqs = torch.gather(seqs, 1, idx[..., None].expand(-1, -1, seqs.shape[-1]))
        return self._losses(params, seqs)

    def stacked_metrics_fn(self, params: dict[str, Tensor], data: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.metrics_fn(params, data)

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        return self._losses(params, data["x"] if idx is None else data["x"][idx])

    def metrics_fn(self, params: dict[str, Tensor], data: dict[str, Tensor]) -> dict[str, Tensor]:
        val = self._losses(params, data["x_val"])
        if self.f_star is not None:
            return {"val_loss": val, "val_gap": val - self.f_star}
        return {"val_loss": val, "test_loss": self._losses(params, data["x_test"])}
