"""Forward-chaining evaluation of the reason classifier's fallback (docs/reasons.md, "The
statistical fallback").

For each part k of realworld.tsv (k = 2 … the last; part 0 is the first tuning rows, parts 1 …
the held-back parts that became tuning data, in the order they were gathered), the fallback is
trained only on the texts before part k (plus tuning.tsv and heldback.tsv, which predate the
corpus) and the rules + fallback are scored on part k. Two rule sets:

- ``--rules then`` (default): the rules as they were when part k was evaluated once (its
  ``reasons.py`` read from git, see ``EVALUATED_WITH``; needs the git tree): the default
  ``other`` texts are the ones a new part really brought; every part is clean for them;
- ``--rules now``: today's rules, tuned on every part before the last ones: only the
  fallback's delta on the parts after that is meaningful.

    .venv/bin/python tools/reason_forward_chain.py                  # the shipped settings
    .venv/bin/python tools/reason_forward_chain.py --compare        # the table of choices
    .venv/bin/python tools/reason_forward_chain.py --misses         # the fallback's misses

The figures are per text; "speaks" counts the texts no rule layer named.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reason_model_gen import ALPHA, FIXTURES, ROOT, WEIGHT, context, parts, rows_of  # noqa: E402

from postfix_queue_monitor import reason_fallback, reasons  # noqa: E402

#: the commit whose reasons.py evaluated each part once (docs/reasons.md's history)
EVALUATED_WITH = {2: "6dd4d0d", 3: "2aa3985", 4: "990c561", 5: "a338dbd", 6: "28ee229",
                  7: "6ddd3c5", 8: "03b6e41", 9: "d567d01", 10: "65e0abf"}

#: feature sets: subsets of reason_fallback.features (the shipped one is
#: "words+pairs+context+shape")
FEATURE_SETS: dict[str, Callable[[str], bool]] = {
    "words": lambda f: "_" not in f and not f.startswith("#"),
    "words+pairs": lambda f: not f.startswith("#"),
    "words+context": lambda f: "_" not in f or f.startswith("#"),
    "words+pairs+context": lambda f: f != "#shape",
    "words+pairs+context+shape": lambda f: True,
    "words+pairs+codes": lambda f: not f.startswith(("#cmd:", "#frame:", "#shape")),
}


#: the lines of a layered reasons.py (a338dbd and later) patched to mark a weak decision
_WEAK_LINES = (
    ("cls = min((c for c in (weak, coded) if c), key=_ORDER.__getitem__, default=None)",
     '\n        cls = cls and "~" + cls'),
    ("cls = _by_command(basic, command)", '\n        cls = cls and "~" + cls'),
)


def rules_then(k: int) -> Callable[[str], tuple[str | None, bool]]:
    """The rule layers of the commit that evaluated part k: its classify() with the default
    ``other`` told apart (its last line, ``return cls or "other"``, patched), and whether
    only a weak layer (3 or 4: a generic phrase or a code) decided; the rules before the
    layers (parts 2 to 4) have no weak decisions."""
    commit = EVALUATED_WITH[k]
    src = subprocess.run(["git", "-C", str(ROOT), "show",
                          f"{commit}:checks/postfix_queue_monitor/reasons.py"],
                         capture_output=True, text=True, check=True).stdout
    assert src.count('return cls or "other"') == 1, commit
    src = src.replace('return cls or "other"', 'return cls or "__default__"')
    if _WEAK_LINES[0][0] in src:
        for line, tag in _WEAK_LINES:
            assert src.count(line) == 1, commit
            src = src.replace(line, line + tag)
        src = src.replace('if cls == "recipient_unknown" and command == "mail from":',
                          'if cls in ("recipient_unknown", "~recipient_unknown") and '
                          'command == "mail from":')
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"reasons_{commit}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(f"reasons_{commit}", path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)

    def decide(text: str) -> tuple[str | None, bool]:
        cls = mod.classify(text)
        return (None, False) if cls == "__default__" else (cls.lstrip("~"), cls[0] == "~")
    return decide


def rules_now(text: str) -> tuple[str | None, bool]:
    """Today's rule layers: (their class, whether only a weak layer named it)."""
    return reasons._layers(context(text))


class NaiveBayes:
    def __init__(self, rows: list[tuple[set[str], str, int]], alpha: float):
        self.model = reason_fallback.Model(reason_fallback.train(rows, alpha))

    def predict(self, feats: set[str]) -> tuple[str, float, int]:
        return self.model.guess(feats)


class LogisticRegression:
    """Multinomial logistic regression by Adagrad over the same features (an L2 penalty)."""

    def __init__(self, rows: list[tuple[set[str], str, int]], l2: float = 1e-4, epochs: int = 20,
                 rate: float = 0.5):
        self.classes = sorted({c for _, c, _ in rows})
        k = len(self.classes)
        idx = {c: i for i, c in enumerate(self.classes)}
        self.w: dict[str, list[float]] = {}
        self.b = [0.0] * k
        grad2: dict[str, list[float]] = {}
        order = list(range(len(rows)))
        rnd = random.Random(0)
        for _ in range(epochs):
            rnd.shuffle(order)
            for n in order:
                feats, cls, _ = rows[n]   # (weights: the NB's only)
                p = self._probs(feats)
                g = [p[i] - (i == idx[cls]) for i in range(k)]
                for f in feats:
                    w = self.w.setdefault(f, [0.0] * k)
                    g2 = grad2.setdefault(f, [1e-8] * k)
                    for i in range(k):
                        gi = g[i] + l2 * w[i]
                        g2[i] += gi * gi
                        w[i] -= rate * gi / math.sqrt(g2[i])
                for i in range(k):
                    self.b[i] -= 0.05 * g[i]

    def _probs(self, feats: set[str]) -> list[float]:
        z = list(self.b)
        for f in feats:
            w = self.w.get(f)
            if w:
                z = [a + b for a, b in zip(z, w)]
        top = max(z)
        ex = [math.exp(v - top) for v in z]
        total = sum(ex)
        return [v / total for v in ex]

    def predict(self, feats: set[str]) -> tuple[str, float, int]:
        p = self._probs(feats)
        best = max(range(len(p)), key=p.__getitem__)
        known = sum(1 for f in feats if f[0] != "#" and f in self.w)
        return self.classes[best], p[best], known


Decide = Callable[[str], tuple[str | None, bool]]


def chain(corpus: list[list[tuple[str, str]]], decide: dict[int, Decide],
          model: str = "nb", feature_set: str = "words+pairs+context+shape",
          alpha: float = ALPHA,
          min_confidence: float = reason_fallback.MIN_PROBABILITY, misses: bool = False,
          weight: int = WEIGHT, overrule: float | None = reason_fallback.OVERRULE_PROBABILITY,
          ) -> list[tuple[int, int, int, int, int]]:
    """Per part k >= 2: (k, texts, texts the fallback speaks for, right by the rules alone,
    right by the rules + fallback). A weak rule decision gives way to the fallback's class
    where it is at least ``overrule`` probable (``None``: never)."""
    keep = FEATURE_SETS[feature_set]
    first = [row for name in ("tuning.tsv", "heldback.tsv") for row in rows_of(FIXTURES / name)]

    def feats(text: str) -> set[str]:
        return {f for f in reason_fallback.features(context(text)) if keep(f)}

    out = []
    for k in range(2, len(corpus)):
        train = [(feats(t), c, weight if decide[k](t)[0] is None else 1)
                 for t, c in first + [r for p in corpus[:k] for r in p]]
        fb = NaiveBayes(train, alpha) if model == "nb" else LogisticRegression(train)
        alone = both = speaks = 0
        for text, cls in corpus[k]:
            ruled, weak = decide[k](text)
            got = ruled
            if ruled is None:
                speaks += 1
                guess, confidence, known = fb.predict(feats(text))
                got = guess if known and confidence >= min_confidence else "other"
                if misses and got != cls:
                    print(f"  part {k}: want {cls} got {got} ({confidence:.2f}): {text[:110]}")
            elif weak and overrule is not None:
                guess, confidence, known = fb.predict(feats(text))
                if known and confidence >= overrule:
                    got = guess
            alone += (ruled or "other") == cls
            both += got == cls
        out.append((k, len(corpus[k]), speaks, alone, both))
    return out


def show(name: str, rows: list[tuple[int, int, int, int, int]]) -> None:
    cells = " | ".join(f"{a} → {b}" for _, _, _, a, b in rows)
    gain = sum(b - a for *_, a, b in rows)
    print(f"| {name} | {cells} | {gain:+d} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", choices=("then", "now"), default="then")
    ap.add_argument("--compare", action="store_true", help="every model, feature set, smoothing")
    ap.add_argument("--misses", action="store_true", help="print the fallback's misses")
    args = ap.parse_args(argv)
    corpus = parts()
    ks = range(2, len(corpus))
    decide: dict[int, Decide] = (
        {k: rules_then(k) for k in ks} if args.rules == "then" else dict.fromkeys(ks, rules_now))
    print(f"rules {args.rules}; per part k: right by the rules alone → with the fallback "
          "(trained on the parts before k)")
    print("| setting | " + " | ".join(f"part {k} ({len(corpus[k])})" for k in ks) + " | sum |")
    print("|---|" + "---|" * (len(ks) + 1))
    base = chain(corpus, decide, misses=args.misses)
    print("| speaks for | " + " | ".join(str(s) for _, _, s, _, _ in base) +
          f" | {sum(s for _, _, s, _, _ in base)} |")
    show(f"NB words+pairs+context+shape, alpha {ALPHA}, weight {WEIGHT}, overrules a weak "
         f"rule at P >= {reason_fallback.OVERRULE_PROBABILITY} (shipped)", base)
    if args.compare:
        show("NB words+pairs+context, never overrules a rule (the fallback of 38d4d7a)",
             chain(corpus, decide, feature_set="words+pairs+context", overrule=None))
        for over in (None, 0.99, 0.999):
            show(f"NB, overrules a weak rule at P >= {over}" if over else
                 "NB, never overrules a rule", chain(corpus, decide, overrule=over))
        for fs in FEATURE_SETS:
            if fs != "words+pairs+context+shape":
                show(f"NB {fs}", chain(corpus, decide, feature_set=fs))
        for alpha in (0.02, 0.05, 0.3, 1.0):
            show(f"NB, alpha {alpha}", chain(corpus, decide, alpha=alpha))
        for conf in (0.0, 0.7, 0.9):
            show(f"NB, speaks only when P >= {conf}", chain(corpus, decide, min_confidence=conf))
        for w in (1, 2, 10, 20):
            show(f"NB, the texts the rules leave weigh {w}", chain(corpus, decide, weight=w))
        show("logistic regression, words+pairs+context", chain(corpus, decide, model="lr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
