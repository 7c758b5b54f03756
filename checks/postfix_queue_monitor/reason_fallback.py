"""The statistical fallback of the reason classifier (docs/reasons.md, "The statistical fallback").

The rule layers of :mod:`reasons` name a class for most texts; a text none of them names
(before this layer: the default ``other``) is classified here by a multinomial naive Bayes
model over the text's words, word pairs and SMTP context (the basic reply code, the enhanced
code's class.subject, the command answered, whether the text is Postfix's own words or a
reply), trained on the labelled corpus in ``tests/fixtures/reasons/``. Naive Bayes, not a
stronger model: a forward-chaining evaluation over the corpus's parts (``tools/
reason_forward_chain.py``) found it as good as a logistic regression there, it trains by
counting (the generator is reproducible to the byte), and it needs no dependency.

The model is the generated table :mod:`reason_model` (``tools/reason_model_gen.py``), imported
on the first text that reaches this layer, never before: a check whose texts all get a rule
class does not pay for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

#: reasons.Context, (Postfix's own words, the reply, the command answered, the basic code, the
#: enhanced code), spelt out here: reasons imports this module (lazily), not the other way
Context = tuple[str, str, "str | None", "str | None", "tuple[int, int, int] | None"]

#: words of two or more letters; host names, URLs and other dotted names are dropped first
#: (reasons.normalize already replaced hosts in Postfix's framing and addresses)
_WORD = re.compile(r"[a-z]{2,}")
_DOTTED = re.compile(r"https?://\S+|www\.\S+|\b[\w-]+(?:\.[\w-]+)+\b")
#: Postfix's framing, which the context features carry: "host HOST said:" leaves "host host"
#: before the reply, "(in reply to RCPT TO command)" is the command
_FRAMING = re.compile(r"\bhost host\b|\(in reply to [a-z ]+ command\)")


def features(ctx: Context) -> set[str]:
    """The model's features of one text's :func:`reasons.context`: its words and adjacent
    word pairs (Postfix's framing words included: "lost connection", "said", "refused to talk
    to me" say where the text comes from; the host and the command note are context
    features), and ``#``-prefixed context features (codes, command, framing, a provider code's
    shape)."""
    local, reply, command, basic, dsn = ctx
    text = _DOTTED.sub(" ", f"{local} {reply}" if reply else local)
    words = _WORD.findall(_FRAMING.sub(" ", text) if "host" in text else text)
    out = set(words)
    out.update(f"{a}_{b}" for a, b in zip(words, words[1:]))
    if basic:
        out.add(f"#code:{basic}")
        out.add(f"#code:{basic[0]}xx")
    if dsn:
        out.add(f"#dsn:{dsn[0]}.{dsn[1]}")
    out.add(f"#cmd:{command or 'none'}")
    out.add("#frame:" + ("reply" if reply else "local") + ("+local" if local.strip() else ""))
    if ":" in text and _SHAPE.search(text):
        out.add("#shape")
    return out


#: a provider's own code of the shape "MI:DMC", "HL:ICC", "DT:SPM" (NetEase's, Wanxiang's):
#: the feature "#shape" counts as a known word (Model.scores), so that a text whose only words
#: are such a code is not "unknown"
_SHAPE = re.compile(r"\b[a-z]{2}:[a-z]{3}\b")


def train(rows: Iterable[tuple[set[str], str, int]], alpha: float) -> dict:
    """The model of labelled texts' :func:`features`, each with a whole weight: class counts
    and, per feature, its count in each class (each feature counted once per text, times the
    text's weight). Deterministic: sorted classes and features."""
    docs: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    for feats, cls, weight in rows:
        docs[cls] = docs.get(cls, 0) + weight
        for f in feats:
            slot = counts.setdefault(f, {})
            slot[cls] = slot.get(cls, 0) + weight
    classes = sorted(docs)
    index = {c: i for i, c in enumerate(classes)}
    table = {f: tuple(sorted((index[c], n) for c, n in by.items()))
             for f, by in sorted(counts.items())}
    totals = [0] * len(classes)
    for by in table.values():
        for i, n in by:
            totals[i] += n
    return {"alpha": alpha, "classes": tuple(classes), "docs": tuple(docs[c] for c in classes),
            "totals": tuple(totals), "counts": table}


class Model:
    """Scores of a trained table. Nothing is worked out per feature when it is built (the
    table's counts are read as they are; a logarithm per count value is computed once): a
    check pays the import of the table (~2 ms) and nothing more before its first text."""

    __slots__ = ("classes", "base", "per_feature", "counts", "logs")

    def __init__(self, table: dict):
        alpha = table["alpha"]
        docs, totals, counts = table["docs"], table["totals"], table["counts"]
        vocab = len(counts)
        n = sum(docs)
        self.classes: tuple[str, ...] = tuple(table["classes"])
        #: log P(class)
        self.base = [math.log(d / n) for d in docs]
        #: log P(unseen feature | class), added for every known feature of a text
        self.per_feature = [math.log(alpha / (t + alpha * vocab)) for t in totals]
        #: per feature: (class index, count) where its count is not 0
        self.counts: dict[str, tuple[tuple[int, int], ...]] = counts
        #: log((count + alpha) / alpha): what a count adds over an unseen feature
        self.logs = [math.log((c + alpha) / alpha) for c in range(max(docs) + 1)]

    def scores(self, feats: Iterable[str]) -> tuple[list[float], int]:
        """(log P(class) + sum of log P(feature | class) over the text's known features, how
        many of them are words or a provider code's shape rather than the SMTP context)."""
        out = list(self.base)
        known = context = 0
        counts, logs = self.counts, self.logs
        for f in feats:
            pairs = counts.get(f)
            if pairs is None:
                continue
            known += 1
            if f[0] == "#" and f != "#shape":
                context += 1
            for i, c in pairs:
                out[i] += logs[c]
        return [s + known * p for s, p in zip(out, self.per_feature)], known - context

    def guess(self, feats: set[str]) -> tuple[str, float, int]:
        """(the most probable class, its probability, how many of the text's words the model
        knows); the probability as naive Bayes gives it, which is overconfident."""
        s, words = self.scores(feats)
        top = max(s)
        return self.classes[s.index(top)], 1 / sum(math.exp(v - top) for v in s), words

    def predict(self, ctx: Context) -> str:
        """The model's class, or ``other`` when it knows none of the text's words or its
        class is less probable than :data:`MIN_PROBABILITY`."""
        cls, p, known = self.guess(features(ctx))
        return cls if known and p >= MIN_PROBABILITY else "other"


#: the fallback answers "other" below this probability (tools/reason_forward_chain.py)
MIN_PROBABILITY = 0.5


_MODEL: Model | None = None


def model() -> Model:
    """The shipped model, built from :mod:`reason_model` on first use."""
    global _MODEL
    if _MODEL is None:
        from . import reason_model
        _MODEL = Model(reason_model.MODEL)
    return _MODEL


def predict(ctx: Context) -> str:
    """The class the shipped model gives a text no rule layer named."""
    return model().predict(ctx)


#: a weak rule decision (a generic phrase, a code) gives way to the model's class at this
#: probability or more (tools/reason_forward_chain.py)
OVERRULE_PROBABILITY = 0.9


def overrule(ctx: Context, ruled: str) -> str:
    """A weak rule decision, or the model's class where it is nearly certain of another."""
    cls, p, known = model().guess(features(ctx))
    return cls if known and p >= OVERRULE_PROBABILITY else ruled
