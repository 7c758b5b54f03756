"""The reason classifier's statistical fallback (reason_fallback.py; docs/reasons.md, "The
statistical fallback"): the shipped model is what the corpus gives, it speaks only where no rule
layer named a class, and it is loaded only when such a text comes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import reason_model_gen

from postfix_queue_monitor import reason_fallback, reasons

ROOT = Path(__file__).resolve().parents[2]
SAID = "host mx.example[192.0.2.1] said: "


def test_the_shipped_model_is_what_the_corpus_gives():
    """Regenerated from tests/fixtures/reasons/, the model file is the same to the byte: a
    corpus text added or relabelled without `tools/reason_model_gen.py` fails here."""
    shipped = (ROOT / "checks/postfix_queue_monitor/reason_model.py").read_text(encoding="utf-8")
    assert reason_model_gen.render(reason_model_gen.training_rows()) == shipped


def test_the_model_is_trained_on_every_labelled_text_and_no_heldback_file():
    rows = reason_model_gen.training_rows()
    from postfix_queue_monitor import reason_model
    assert sum(reason_model.MODEL["docs"]) == len(rows) + (reason_model_gen.WEIGHT - 1) * sum(
        1 for t, _ in rows if reasons.rule_class(t) is None)
    assert set(reason_model.MODEL["classes"]) == set(reasons.CLASSES)
    assert [n for n in reason_model_gen.TRAINING_FILES if "heldback" in n] == ["heldback.tsv"]


@pytest.mark.parametrize(("text", "cls"), [
    # texts the rules leave unnamed, worded as held-back part 8's misses were (not its texts)
    (SAID + "426 Dns resolve failure", "dns"),
    (SAID + "550 receiver not exist", "recipient_unknown"),
    (SAID + "554 your ip is hangup", "policy"),
])
def test_the_fallback_names_what_no_rule_does(text, cls):
    assert reasons.rule_class(text) is None
    assert reasons.classify(text) == cls


def test_an_other_a_rule_decides_stays_other():
    # the remote's own storage trouble is "other" by a rule: the fallback never sees it
    text = SAID + "452 4.3.1 Insufficient system storage (in reply to MAIL FROM command)"
    assert reasons.rule_class(text) == "other"
    assert reasons.classify(text) == "other"
    assert reasons.rule_class(SAID + "451 4.3.0 Nope") == "other"


def test_a_text_whose_words_the_model_does_not_know_is_other():
    for text in (SAID + "550 Nope", SAID + "xyzzy plugh", "", "frobnicated"):
        assert reasons.rule_class(text) is None
        assert reasons.classify(text) == "other"


def test_an_unsure_model_answers_other():
    model = reason_fallback.model()
    ctx = reasons.context(reasons.normalize(SAID + "550 user mailbox").lower())
    cls, p, known = model.guess(reason_fallback.features(ctx))
    assert known and cls != "other"
    saved = reason_fallback.MIN_PROBABILITY
    try:
        reason_fallback.MIN_PROBABILITY = min(1.0, p + 1e-9)
        assert model.predict(ctx) == "other"
        reason_fallback.MIN_PROBABILITY = p
        assert model.predict(ctx) == cls
    finally:
        reason_fallback.MIN_PROBABILITY = saved


def _clear() -> None:
    reasons._classify_text.cache_clear()
    reasons._classify.cache_clear()


def test_a_weak_rule_gives_way_only_to_a_nearly_certain_model():
    # "try again later" names greylisting only weakly; the model, nearly certain, reads the
    # full mailbox (part 8's text); above its probability the weak rule stands
    text = SAID + "User is over the quota. You can try again later."
    ctx = reasons.context(reasons.normalize(text).lower())
    assert reasons._layers(ctx) == ("greylisted", True)
    cls, p, known = reason_fallback.model().guess(reason_fallback.features(ctx))
    assert cls == "mailbox_full" and known and p >= reason_fallback.OVERRULE_PROBABILITY
    saved = reason_fallback.OVERRULE_PROBABILITY
    try:
        for threshold, want in ((p, "mailbox_full"), (p + 1e-9, "greylisted")):
            reason_fallback.OVERRULE_PROBABILITY = threshold
            _clear()
            assert reasons.classify(text) == want
    finally:
        reason_fallback.OVERRULE_PROBABILITY = saved
        _clear()
    # a strong rule is never overruled, and a reply to MAIL FROM never becomes the recipient's
    assert reasons._layers(reasons.context(SAID.lower() + "550 user unknown")) == (
        "recipient_unknown", False)
    assert reasons.classify(SAID + "551 invalid address (in reply to MAIL FROM command)") == (
        "policy")
    # ... nor when it is the model that reads the recipient: layer 4's weak policy (a 5xx to
    # MAIL FROM) is overruled by a nearly certain recipient_unknown, which stays policy there
    text = SAID + "550 receiver not exist (in reply to MAIL FROM command)"
    ctx = reasons.context(reasons.normalize(text).lower())
    assert reasons._layers(ctx) == ("policy", True)
    cls, p, _ = reason_fallback.model().guess(reason_fallback.features(ctx))
    assert cls == "recipient_unknown" and p >= reason_fallback.OVERRULE_PROBABILITY
    assert reasons.classify(text) == "policy"


def test_a_provider_code_alone_is_a_known_word():
    # "450 QX:ABC": no word the model knows, but the shape of a provider's code (NetEase's
    # "MI:DMC", Wanxiang's "HL:ICC") is a feature it counts as known
    ctx = reasons.context(reasons.normalize(SAID + "450 QX:ABC").lower())
    assert "#shape" in reason_fallback.features(ctx)
    assert reason_fallback.model().guess(reason_fallback.features(ctx))[2] == 1


def _modules_after(code: str) -> set[str]:
    code += "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT / "checks")})
    return set(out.stdout.split())


def test_the_model_is_loaded_only_for_a_text_no_rule_names():
    ruled = _modules_after("from postfix_queue_monitor import reasons\n"
                           "assert reasons.classify('connect to a[192.0.2.1]:25: Connection "
                           "refused') == 'refused'")
    assert "postfix_queue_monitor.reason_model" not in ruled
    assert "postfix_queue_monitor.reason_fallback" not in ruled
    unnamed = _modules_after("from postfix_queue_monitor import reasons\n"
                             "reasons.classify('host a[192.0.2.1] said: 426 Dns resolve failure')")
    assert "postfix_queue_monitor.reason_model" in unnamed
    # a weak decision (a generic phrase, a code) asks the model too, since it may overrule it
    weak = _modules_after("from postfix_queue_monitor import reasons\n"
                          "reasons.classify('host a[192.0.2.1] said: 451 Try again later')")
    assert "postfix_queue_monitor.reason_model" in weak


@pytest.mark.parametrize(("text", "cls"), [
    # docs/reasons.md, "What stays other": no known word, an unsure model, the model's own other
    ("550 Nope", "other"),
    ("xyzzy plugh", "other"),
    ("554 error", "other"),
    ("451 bad bytes", "other"),
    ("451 error", "other"),
    ("421 closing", "other"),
    # ... and a bare 5xx with a word that names nothing, read by its code
    ("550 bad bytes", "recipient_unknown"),
    ("550 error", "recipient_unknown"),
    ("550 sorry", "recipient_unknown"),
    ("554 hello world", "policy"),
])
def test_what_stays_other_as_docs_say(text, cls):
    assert reasons.rule_class(SAID + text) is None
    assert reasons.classify(SAID + text) == cls
