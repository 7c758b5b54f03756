"""The deferral reason classifier (docs/reasons.md).

Two pairs of text sets, each with a part the patterns were tuned on and a held-back part
written down (and, for the real-world corpus, committed) before the classifier was run on it:

- ``tuning.tsv`` / ``heldback.tsv``: the first sets (real wording retyped; every tuning line
  must be right, at least 95 % of the held-back ones);
- ``realworld.tsv``: texts harvested from public logs, bounce collections, provider pages and
  issue pastes (sources in ``SOURCES.md``), the tuning part. It holds the first ten
  held-back parts too (evaluated once each at 84.1 %, 91.4 %, 84.5 %, 81.9 %, 67.7 %, 87.8 %,
  72.3 %, 61.3 %, 87.5 % and 78.9 %, then tuned on; parts 8 to 10 train the fallback model,
  reason_fallback.py); it must stay at >= 97 % per text and per group of look-alike texts,
  and >= 95 % in every class.
  A new held-back part, from other sources, must not fall below the figure published in
  docs/reasons.md (part 10: 78.9 % with the fallback, 75.8 % by the rules alone, measured once).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from postfix_queue_monitor import reasons

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def _tsv(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (FIX / "reasons" / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, cls = line.split("\t")
        rows.append((text, cls))
    return rows


TUNING = _tsv("tuning.tsv")
HELDBACK = _tsv("heldback.tsv")


def _corpus(name: str) -> list[tuple[str, str, str]]:
    """(text, class, source key) rows of a real-world corpus file."""
    rows = []
    for line in (FIX / "reasons" / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, cls, source = line.split("\t")
        rows.append((text, cls, source))
    return rows


REAL_TUNING = _corpus("realworld.tsv")
#: the held-back parts now in use (file, floor per text, floor per group): each published in
#: docs/reasons.md and README.md, measured once after it was committed alone; floors rounded
#: down, never raised by tuning on its texts. (Parts 3 to 7, 2aa3985, df0ae06, 7647259,
#: f5e32e6 and 617fc3a, measured at 84.5 % / 84.8 %, 81.9 % / 83.1 %, 67.7 % / 67.7 %,
#: 87.8 % / 87.8 % and 72.3 % / 72.3 %, were tuned on in December 2026 and are in
#: realworld.tsv now. So are parts 8 and 9 (f175f22, b855f48), measured once with the rules
#: alone at 95 of 155 texts (61.3 %, 61.3 % of groups; the classifier of 03b6e41) and 14 of
#: 16 (87.5 %, 87.5 %; the classifier of b855f48), then the training data of the fallback
#: model: its design was chosen by a forward-chaining evaluation that saw part 8's misses,
#: and trained on parts <= 7 it gets 115 of 155 and 14 of 16 (their second evaluation). So is
#: part 10 (d6385c8), measured once after the fallback and its model were final and committed
#: (38d4d7a): rules + fallback 101 of 128 texts (78.9 %), 101 of 128 groups (78.9 %), floors
#: 0.78 and 0.78; the rules alone, as on main then (65e0abf), 97 of 128 (75.8 %, 75.8 %); then
#: the rules and the fallback were tuned on it.)
HELDBACK_PARTS: dict[str, tuple[str, float, float]] = {
    # part 11 (committed alone in 66db048), measured once after part 10 had become tuning data
    # and the method tuned on it was final and committed (3171ed9, merged as 8aa193b): rules +
    # fallback 97 of 110 texts (88.2 %), 97 of 110 groups (88.2 %); [postfix] 21/26, [published]
    # 76/84. The rules alone as on main before that change (cc778ce): 94 of 110 (85.5 %), and
    # main's rules + fallback then: 98 of 110 (89.1 %). Never tuned on.
    "part11": ("realworld-heldback11.tsv", 0.88, 0.88),
}
#: the tuning part's overall floor (per text and per group)
TUNING_MIN = 0.97


def group_key(text: str) -> str:
    """Look-alike texts share a key: the text without hosts, addresses, URLs, domain-like
    tokens, numbers and punctuation, lower-cased."""
    text = reasons.normalize(text)
    text = re.sub(r"https?://\S+", "URL", text)
    text = re.sub(r"[\w.+=-]+@[\w.-]+", "ADDR", text)
    text = re.sub(r"\b[\w-]+(?:\.[\w-]+)+\b", "DOM", text)
    text = re.sub(r"\d+", "N", text)
    return re.sub(r"\W+", " ", text).lower().strip()


def _scores(rows: list[tuple[str, str, str]]) -> dict[str, tuple[int, int]]:
    """Per class (and ``all``, ``groups``): (right, total)."""
    out: dict[str, list[int]] = {}
    groups: dict[str, bool] = {}
    for text, cls, _ in rows:
        ok = reasons.classify(text) == cls
        for key in (cls, "all"):
            slot = out.setdefault(key, [0, 0])
            slot[0] += ok
            slot[1] += 1
        key = group_key(text)
        groups[key] = groups.get(key, True) and ok
    out["groups"] = [sum(groups.values()), len(groups)]
    return {k: (v[0], v[1]) for k, v in out.items()}


def _report(name: str, rows: list[tuple[str, str, str]]) -> dict[str, tuple[int, int]]:
    scores = _scores(rows)
    print(f"{name}: " + ", ".join(f"{k} {r}/{n} ({100 * r / n:.1f} %)"
                                  for k, (r, n) in scores.items()))
    for text, cls, source in rows:
        got = reasons.classify(text)
        if got != cls:
            print(f"  MISS want {cls} got {got} [{source}]: {text}")
    return scores

#: The contract's own examples, each on its own line of the contract text.
CONTRACT_EXAMPLES = [
    ("host mx.example.com[192.0.2.1] refused to talk to me: 554 5.7.1 Service unavailable; "
     "Client host [203.0.113.5] blocked using zen.spamhaus.org", "policy"),
    ("host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.26 This mail is "
     "unauthenticated, which poses a security risk to the sender and Gmail users, and has been "
     "blocked. (in reply to end of DATA command)", "policy"),
    ("lost connection with mx.example.com[192.0.2.1] while receiving the STARTTLS response",
     "lost_connection"),
    ("host mx.example.org[192.0.2.9] said: 450 4.7.1 Client host rejected: cannot find your "
     "reverse hostname, [203.0.113.5] (in reply to RCPT TO command)", "policy"),
    ("host mx.example.org[192.0.2.9] said: 452 4.3.1 Insufficient system storage "
     "(in reply to MAIL FROM command)", "other"),
    ("host mx.example.org[192.0.2.9] said: 451 4.3.0 Error: queue file write error "
     "(in reply to end of DATA command)", "other"),
    ("host gmail-smtp-in.l.google.com[142.250.102.27] said: 421-4.7.28 Gmail has detected an "
     "unusual rate of unsolicited mail. To protect our users from spam, mail sent from your IP "
     "address has been rate limited. (in reply to end of DATA command)", "rate_limited"),
    ("SASL authentication failed; server smtp.example.com[192.0.2.1] said: 535 5.7.8 Error: "
     "authentication failed: authentication failure", "auth"),
    ("host gmail-smtp-in.l.google.com[142.250.102.27] said: 530 5.7.0 Must issue a STARTTLS "
     "command first. a1si - gsmtp (in reply to MAIL FROM command)", "tls"),
    ("host outlook-com.olc.protection.outlook.com[104.47.1.33] said: 451 4.7.500 Server busy. "
     "Please try again later from [203.0.113.5]. (S77719) (in reply to RCPT TO command)",
     "rate_limited"),
    ("host mx.example.org[192.0.2.9] said: 451 4.7.1 Try again later (in reply to RCPT TO "
     "command)", "greylisted"),
    ("Host or domain name not found. Name service error for name=example.com type=MX: Host not "
     "found, try again", "dns"),
    ("delivery temporarily suspended: Host or domain name not found. Name service error for "
     "name=example.com type=MX: Host not found, try again", "dns"),
]


def _id(text: str, cls: str) -> str:
    return f"{cls}-{re.sub(r'[^a-z0-9]+', '-', text.lower())[:60].strip('-')}"


def test_classes_are_the_contract_order():
    assert reasons.CLASSES == (
        "loop", "tls", "auth", "dns", "rate_limited", "greylisted", "mailbox_full",
        "recipient_unknown", "refused", "timeout", "lost_connection", "policy", "transport",
        "other")


def test_every_rule_names_a_class_and_every_class_but_other_has_rules():
    named = {r.cls for r in reasons.RULES}
    assert named <= set(reasons.CLASSES)
    assert set(reasons.CLASSES) - named == set()


def test_sets_are_large_and_cover_every_class():
    assert len(TUNING) >= 100 and len(HELDBACK) >= 60
    for rows in (TUNING, HELDBACK):
        assert {c for _, c in rows} == set(reasons.CLASSES)
    # the held-back texts are not copies of the tuning ones
    assert not {t for t, _ in TUNING} & {t for t, _ in HELDBACK}


@pytest.mark.parametrize(("text", "cls"), TUNING, ids=[_id(t, c) for t, c in TUNING])
def test_tuning_text(text, cls):
    assert reasons.classify(text) == cls


@pytest.mark.parametrize(("text", "cls"), CONTRACT_EXAMPLES,
                         ids=[_id(t, c) for t, c in CONTRACT_EXAMPLES])
def test_contract_example(text, cls):
    assert reasons.classify(text) == cls


def test_heldback_at_least_95_percent():
    misses = [(cls, reasons.classify(text), text) for text, cls in HELDBACK
              if reasons.classify(text) != cls]
    right = len(HELDBACK) - len(misses)
    print(f"held-back: {right}/{len(HELDBACK)} right ({100 * right / len(HELDBACK):.1f} %)")
    for want, got, text in misses:
        print(f"  MISS want {want} got {got}: {text}")
    assert right / len(HELDBACK) >= 0.95, misses


@pytest.mark.parametrize("cls", ["refused", "timeout", "dns", "lost_connection", "transport"])
def test_suspended_is_classified_by_what_follows(cls):
    inner = {"refused": "connect to mx.example.com[192.0.2.1]:25: Connection refused",
             "timeout": "connect to mx.example.com[192.0.2.1]:25: Connection timed out",
             "dns": "Host or domain name not found. Name service error for name=x.example "
                    "type=MX: Host not found, try again",
             "lost_connection": "lost connection with mx.example.com[192.0.2.1] while sending "
                                "RCPT TO",
             "transport": "unknown mail transport error"}[cls]
    assert reasons.classify(inner) == cls
    assert reasons.classify(f"delivery temporarily suspended: {inner}") == cls


def test_words_in_the_remote_reply_do_not_make_a_local_class():
    # "refused" in a reply is not a refused connection; "Domain not found" in a reply is not
    # our DNS failing; "DNSBL" is not DNS.
    assert reasons.classify("host mx.example.com[192.0.2.1] said: 554 5.7.1 Connection refused "
                            "by policy (in reply to RCPT TO command)") == "policy"
    assert reasons.classify("host mx.example.com[192.0.2.1] said: 450 4.1.8 <a@b.example>: "
                            "Sender address rejected: Domain not found") == "policy"
    assert reasons.classify("host mx.example.com[192.0.2.1] said: 554 listed on DNSBL "
                            "(in reply to MAIL FROM command)") == "policy"


def test_empty_and_unknown_texts_are_other():
    assert reasons.classify("") == "other"
    # a text no rule layer names and whose words the fallback model does not know (a text
    # whose words it knows gets its guess: "something nobody has ever written" is one)
    assert reasons.rule_class("something nobody has ever written") is None
    assert reasons.classify("xyzzy plugh frobnicated") == "other"
    assert reasons.classify("host mx.example.com[192.0.2.1] said: 451 Please hold "
                            "(in reply to RCPT TO command)") == "other"


def test_a_code_alone_decides_when_no_phrase_does():
    said = "host mx.example.com[192.0.2.1] said: {} (in reply to RCPT TO command)"
    assert reasons.classify(said.format("550 5.1.1 Nope")) == "recipient_unknown"
    assert reasons.classify(said.format("552 5.2.2 Nope")) == "mailbox_full"
    assert reasons.classify(said.format("554 5.7.1 Nope")) == "policy"
    assert reasons.classify(said.format("451 4.3.0 Nope")) == "other"
    # a phrase beats a code: 5.7.1 with "too many connections" is rate limiting
    assert reasons.classify(said.format("421 4.7.1 too many connections")) == "rate_limited"


def test_classify_is_cached():
    reasons._classify_text.cache_clear()
    text = "connect to mx.example.com[192.0.2.1]:25: Connection refused"
    for _ in range(3):
        reasons.classify(text)
    info = reasons._classify_text.cache_info()
    assert (info.hits, info.misses) == (2, 1)


# -- codes and permanence -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "smtp", "dsn"), [
    ("host a[192.0.2.1] said: 550 5.1.1 <u@x>: User unknown (in reply to RCPT TO command)",
     "550", "5.1.1"),
    ("host a[192.0.2.1] said: 421-4.7.0 [203.0.113.5      15] Try again later", "421", "4.7.0"),
    ("host a[192.0.2.1] refused to talk to me: 554 5.7.1 blocked", "554", "5.7.1"),
    ("host mta6.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] deferred - 4.16.55.1",
     "421", "4.7.0"),
    ("connect to mx.example.com[203.0.113.5]:25: Connection refused", None, None),
    ("host a[192.0.2.1] said: Mailbox full, 552 (in reply to end of DATA command)", None, None),
])
def test_codes(text, smtp, dsn):
    assert reasons.codes(text) == (smtp, dsn)


@pytest.mark.parametrize(("text", "permanent"), [
    ("host a[192.0.2.1] said: 550 5.1.1 <u@x>: User unknown (in reply to RCPT TO command)", True),
    ("host a[192.0.2.1] said: 450 4.2.0 Greylisted (in reply to RCPT TO command)", False),
    ("host a[192.0.2.1] refused to talk to me: 554 5.7.1 blocked using zen.spamhaus.org", True),
    ("host a[192.0.2.1] said: 450 4.1.1 <u@x>: Recipient address rejected: unverified address: "
     "host b[192.0.2.2] said: 550 5.1.1 User unknown (in reply to RCPT TO command)", False),
    ("host a[192.0.2.1] said: Sorry 5.2.2 mailbox full (in reply to end of DATA command)", True),
    ("SASL authentication failed; server a[192.0.2.1] said: 535 5.7.8 Error: authentication "
     "failed", True),
    ("connect to a[192.0.2.1]:25: Connection refused", False),
    ("delivery temporarily suspended: connect to a[192.0.2.1]:25: Connection timed out", False),
    ("Host or domain name not found. Name service error for name=x.example type=MX: Host not "
     "found, try again", False),
    ("Host or domain name not found. Name service error for name=x.invalid type=A: Host not "
     "found", True),
    ("mail for example.com loops back to myself", True),
    ('unknown user: "john"', True),
    ("mail transport unavailable", False),
    ("", False),
])
def test_is_permanent(text, permanent):
    assert reasons.is_permanent(text) is permanent


def test_every_class_has_an_action_and_permanent_adds_postsuper_advice():
    for cls in reasons.CLASSES:
        text = reasons.action(cls)
        assert text and "postsuper" not in text
        perm = reasons.action(cls, permanent=True)
        assert perm.startswith(text) and "postsuper -d" in perm and "never run" in perm
    assert "wait for the retry" in reasons.action("greylisted")
    assert "DNS" in reasons.action("dns") and "SASL" in reasons.action("auth")
    assert reasons.action("no-such-class") == reasons.ACTIONS["other"]


def test_reference_log_texts(fixtures):
    """Every status=deferred/bounced text of the real 3.7.11 capture, classified."""
    got: dict[str, str] = {}
    for line in (fixtures / "postfix-3.7-mixed.log").read_text().splitlines():
        m = re.search(r"status=(?:deferred|bounced) \((.*)\)$", line)
        if m:
            got[m[1]] = reasons.classify(m[1])
    assert set(got.values()) == {"refused", "greylisted", "recipient_unknown"}
    assert got["delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2525: "
               "Connection refused"] == "refused"


# -- names and addresses never pick a class -------------------------------------------------

@pytest.mark.parametrize(("text", "cls"), [
    # Barracuda's own host name carries "barracuda" (a policy word): greylisting it is
    ("host d123a.ess.barracudanetworks.com[209.222.82.252] said: 451 4.7.1 Please try again "
     "later (in reply to RCPT TO command)", "greylisted"),
    ("host mx.spam-filter.example[192.0.2.1] said: 450 4.2.0 Greylisted (in reply to RCPT TO "
     "command)", "greylisted"),
    ("host mx.example.com[192.0.2.1] said: 550 5.1.1 <spam-reports@example.com>: Recipient "
     "address rejected: User unknown (in reply to RCPT TO command)", "recipient_unknown"),
    ("connect to mx.blocked-relay.example[192.0.2.1]:25: Connection timed out", "timeout"),
    ("host mx.spf-check.example[192.0.2.1] said: 535 5.7.8 Error: authentication failed",
     "auth"),
])
def test_host_names_and_addresses_do_not_classify(text, cls):
    assert reasons.classify(text) == cls


def test_normalize():
    assert reasons.normalize(
        "host mx1.example.com[192.0.2.1] said: 550 5.1.1 <u1@example.com>: User unknown "
        "(in reply to RCPT TO command)") == ("host HOST said: 550 5.1.1 <ADDR>: User unknown "
                                             "(in reply to RCPT TO command)")
    assert reasons.normalize("connect to 127.0.0.1[127.0.0.1]:2525: Connection refused") == \
        "connect to HOST: Connection refused"
    assert reasons.normalize("552 5.2.2 x@icloud.com over quota. a1si123 - gsmtp") == \
        "552 5.2.2 ADDR over quota. - gsmtp"
    assert reasons.normalize("421 4.7.0 [TSS04] Messages [AM4PEPF00025F97.EURPRD83.prod]") == \
        "421 4.7.0 [TSS04] Messages [ID]"


def test_texts_that_differ_in_addresses_share_one_classification():
    reasons._classify_text.cache_clear()
    reasons._classify.cache_clear()
    texts = [f"host mx{i % 7}.example.com[192.0.2.{i % 250}] said: 550 5.1.1 "
             f"<user{i}@example.com>: Recipient address rejected: User unknown in virtual "
             f"mailbox table (in reply to RCPT TO command)" for i in range(20000)]
    started = time.perf_counter()
    assert {reasons.classify(t) for t in texts} == {"recipient_unknown"}
    elapsed = time.perf_counter() - started
    assert reasons._classify.cache_info().misses == 1
    assert elapsed < 2.0, f"20,000 texts took {elapsed:.2f} s"


# -- the real-world corpus --------------------------------------------------------------------

#: the held-back files and the units each comes from (disjoint from the tuning part's)
HELDBACK_UNITS: dict[str, set[str]] = {
    # part 11: Postfix-framed texts and providers' published replies, each row tagged with its
    # kind, gathered while part 10 became tuning data, committed before any evaluation
    # (SOURCES.md, "Held back (11)")
    "realworld-heldback11.tsv": {"page11", "issue11", "file11"},
}
#: a held-back part holds at least 150 texts (parts 2, 3, 5, 7 and 8 did); a smaller one has a
#: floor of its own, as part 4 (70 of its 72) and part 6 (100 of its 115) had. Part 9 holds 16:
#: its rule (Postfix-framed texts only, look-alikes of corpus texts dropped) left no more from
#: the sources searched, 60 of its 76 candidates being look-alikes or from sources already used
HELDBACK_MIN_ROWS = 150
HELDBACK_MIN_ROWS_OF: dict[str, int] = {
    # part 11 holds 110 (its rule aimed at 100 or more)
    "realworld-heldback11.tsv": 110}
#: a held-back part spans at least 8 classes; part 9's 16 texts span 6 (no class was sought)
HELDBACK_MIN_CLASSES = 8
HELDBACK_MIN_CLASSES_OF: dict[str, int] = {}
TUNING_UNITS = {"set-of-emails", "p5-sisimai", "ASO", "pflgviewer",
                # the first held-back part, tuning data since it was evaluated (84.1 %)
                "smtp-field-manual", "LogReporter", "postfix_log_analysis", "paste",
                # the second held-back part (d0ff3b1), tuning data since it was evaluated (91.4 %)
                "smtp-codes", "pbh", "issue", "page", "file",
                # the third (2aa3985, 84.5 %) and fourth (df0ae06, 81.9 %) held-back parts
                "bounceparser", "crisp", "bounce_email", "flufl.bounce", "sandum-bounce-parser",
                "grok-patterns", "google-doc", "page4",
                # the fifth (7647259, 67.7 %), the sixth (f5e32e6, 87.8 %) and the seventh
                # (617fc3a, 72.3 %)
                "file5", "file6", "issue6", "page7", "issue7", "file7",
                # the eighth (f175f22, 61.3 %) and ninth (b855f48, 87.5 %)
                "page8", "issue8", "file8", "page9", "issue9", "file9",
                # the tenth (d6385c8, 75.8 % by the rules alone, 78.9 % with the fallback)
                "page10", "issue10", "file10"}


def _unit(source: str) -> str:
    return "paste" if source.startswith("paste:") else source.split(":")[0]


def test_realworld_corpus_is_large_split_by_source_and_sourced():
    assert len(REAL_TUNING) >= 1754
    # (three texts occur twice: the same reply in two real bounces of held-back part 3, kept
    # as committed)
    assert len(REAL_TUNING) - len({t for t, _, _ in REAL_TUNING}) == 3, "a text is listed twice"
    assert {c for _, c, _ in REAL_TUNING} == set(reasons.CLASSES)
    tuning_units = {_unit(s) for _, _, s in REAL_TUNING}
    assert tuning_units == TUNING_UNITS
    listed = (FIX / "reasons" / "SOURCES.md").read_text(encoding="utf-8")
    for key in tuning_units:
        assert f"`{key}:" in listed or key == "paste", key
    # a held-back part: its own sources; none of its groups of look-alikes occurs in the tuning
    # part, the first sets or another held-back part
    seen = ({group_key(t) for t, _, _ in REAL_TUNING}
            | {group_key(t) for t, _ in TUNING + HELDBACK})
    assert {name for name, _, _ in HELDBACK_PARTS.values()} <= set(HELDBACK_UNITS)
    for name in HELDBACK_UNITS:
        rows = _corpus(name)
        assert len(rows) >= HELDBACK_MIN_ROWS_OF.get(name, HELDBACK_MIN_ROWS), name
        classes = len({c for _, c, _ in rows})
        assert classes >= HELDBACK_MIN_CLASSES_OF.get(name, HELDBACK_MIN_CLASSES), name
        units = {_unit(s) for _, _, s in rows}
        assert units == HELDBACK_UNITS[name] and not units & TUNING_UNITS, name
        for key in units:
            assert f"`{key}:" in listed, key
        groups = {group_key(t) for t, _, _ in rows}
        assert not groups & seen, name
        seen |= groups


def test_realworld_tuning_at_least_97_percent_overall():
    scores = _scores(REAL_TUNING)
    for key in ("all", "groups"):
        right, total = scores[key]
        assert right / total >= TUNING_MIN, (key, right, total)


def test_realworld_tuning_at_least_95_percent_in_every_class():
    scores = _report("real-world tuning", REAL_TUNING)
    low = {k: (r, n) for k, (r, n) in scores.items() if r / n < 0.95}
    assert not low, low


#: the tuning part's texts the classifier gets wrong, each named in docs/reasons.md. The floors
#: above leave room for some 40 more misses, so a family that stops reading the one or two texts
#: it was written for (most of the part-6 and part-7 rows) would pass them unnoticed; this list
#: does not: a text may leave it when it comes right, a new miss fails.
TUNING_MISSES = {
    'host mx.example[192.0.2.1] said: 421 4.7.0 Try again later, closing connection. '
    '(command) For more information, go to About SMTP error messages.',
    'host mx.example[192.0.2.1] said: mail size limit exceeded (in reply to end of DATA '
    'command)',
    'host mx.example[192.0.2.1] said: 550 message sending for this account is disabled',
    'host mx.example[192.0.2.1] said: 550 Host unknown',
    'host mx.example[192.0.2.1] said: 552 Too much mail data recipient-mailbox-is-'
    'full@docomo.ne.jp',
    'host mx.example[192.0.2.1] said: 421 Promise timed out after 15000 milliseconds',
    'host mx.example[192.0.2.1] said: 554 5.7.1 <nevairbe@example.com>: Recipient address '
    'rejected: Access denied',
    'host mail.domain.com[192.XX.XX.XX] said: 553 5.7.1 <user@mail.domain.com>: Sender '
    'address rejected: not logged in (in reply to RCPT TO command)',
    'host mx.example[192.0.2.1] said: 4.2.1 Sender ip address rejected: You sent to many '
    'mails from different domains in the last 10 minutes',
    'host mx.example[192.0.2.1] said: 4.2.2 Sender domain rejected: You sent to many mails '
    'from different ip address in the last 10 minutes',
    'host XXXX said: 451 4.3.2 Please try again later (in reply to RCPT TO command)',
    'host mx.example[192.0.2.1] said: 451 DT:SPM ,please try again',
    'host mx02.mail.icloud.com[17.57.152.5] said: 451 4.7.1 Service unavailable - try again'
    ' later (in reply to RCPT TO command)',
    'host mx.example[192.0.2.1] said: 421 4.4.1 CHIC IP ADDRESS: Network is busy.',
    'host mx.example[192.0.2.1] said: 421 4.4.5 CCRT IP ADDRESS: Connection refused. Server'
    ' is busy(RT)',
    'host mx.example[192.0.2.1] said: 421 Server too busy.',
    'host mx.example[192.0.2.1] said: 452 4.5.3 Recipient policy mismatch',
}


def test_realworld_tuning_misses_no_text_beyond_the_known_ones():
    assert TUNING_MISSES <= {t for t, _, _ in REAL_TUNING}
    missed = {t for t, cls, _ in REAL_TUNING if reasons.classify(t) != cls}
    assert missed <= TUNING_MISSES, sorted(missed - TUNING_MISSES)


@pytest.mark.parametrize(("name", "texts_min", "groups_min"), list(HELDBACK_PARTS.values()),
                         ids=list(HELDBACK_PARTS))
def test_realworld_heldback_not_below_the_published_figure(name, texts_min, groups_min):
    scores = _report(f"real-world held-back {name}", _corpus(name))
    right, total = scores["all"]
    assert right / total >= texts_min
    right, total = scores["groups"]
    assert right / total >= groups_min


@pytest.mark.parametrize(("text", "cls"), [
    # the two examples: the address between code and text; our sender refused
    ("host example-com.mail.protection.outlook.com[52.101.1.1] said: 550 5.4.1 "
     "[user@example.com]: Recipient address rejected: Access denied. For more information see "
     "https://aka.ms/EXOSmtpErrors [AM4PEPF00025F97.EURPRD83.prod.outlook.com 2026-11-29T10:00:00"
     ".000Z 08DD1234] (in reply to RCPT TO command)", "recipient_unknown"),
    ("host mx.example.com[192.0.2.1] said: 551 invalid address (in reply to MAIL FROM command)",
     "policy"),
    # the same words in reply to RCPT TO are about the recipient
    ("host mx.example.com[192.0.2.1] said: 551 invalid address (in reply to RCPT TO command)",
     "recipient_unknown"),
    # a 5xx to MAIL FROM that names nothing else is about our sender; a 4xx there stays other
    ("host mx3.hotmail.com[198.51.100.2] said: 554 Transaction failed (in reply to MAIL FROM "
     "command)", "policy"),
    ("host mx.example.org[192.0.2.9] said: 452 4.3.1 Insufficient system storage (in reply to "
     "MAIL FROM command)", "other"),
    # a local delivery agent's own error is transport, whatever words its output carries
    ("temporary failure. Command output: ERR: authdaemon: s_connect() failed: Connection "
     "refused /usr/bin/maildrop: Temporary authentication failure.", "transport"),
    ('Command time limit exceeded: "/usr/bin/procmail"', "transport"),
    ('Command died with status 1: "/usr/lib/dovecot/deliver". Command output: lda: Fatal: '
     "Invalid user settings", "transport"),
    ("error reading forwarding file: Permission denied", "transport"),
    ("cannot find alias database owner", "transport"),
    # ... except its quota (mailbox_full) and a forwarding loop
    ('temporary failure. Command output: procmail: Quota exceeded while writing '
     '"/home/u/Maildir/tmp/1.host"', "mailbox_full"),
    ("mail forwarding loop for user@example.com", "loop"),
    # older Postfix wordings
    ("connect to mx.example.com[192.0.2.1]: read timeout", "timeout"),
    ("connect to mx.example.com[192.0.2.1]: server dropped connection without sending the "
     "initial SMTP greeting", "lost_connection"),
    ("Name server loop for mx.example.co.uk", "dns"),
    # blocked because of spam / invalid recipients is policy even when it says "too many"
    ("host mx.example.com[192.0.2.1] said: 554 This IP has been temporarily blocked for "
     "attempting to mail too many invalid recipients. IB112", "policy"),
    # a 5xx greeting that names nothing refuses us (the client); a 4xx one says nothing
    ("host mx.example.com[192.0.2.1] refused to talk to me: 554 mx.example.com", "policy"),
    ("host mx.example.com[192.0.2.1] refused to talk to me: 421 mx.example.com", "other"),
    # the remote's own trouble is not greylisting, although it says "try again later"
    ("host mx.example.com[192.0.2.1] said: 451 4.7.0 Temporary server error. Please try again "
     "later. PRX6 (in reply to RCPT TO command)", "other"),
    # providers' own words for a mailbox that is gone or cannot be used
    ("host mx.example.com[192.0.2.1] said: 550 5.2.0 <u@example.com> - Recipient unavailable "
     "(in reply to RCPT TO command)", "recipient_unknown"),
    ("host mx.example.com[192.0.2.1] said: 540 5.7.1 <u@example.com>: recipient address "
     "rejected: Inactive (in reply to RCPT TO command)", "recipient_unknown"),
    # held-back part 2's misses, tuning data since December 2026 (smtp.codes, PHP-Bounce-Handler):
    # excessive failures of our IP are a block, not our SASL; the sender's domain is ours
    ("host mx.example[192.0.2.1] said: 554 Your IP is generating excessive authentication "
     "failures.", "policy"),
    ("host mx.example[192.0.2.1] said: 550 5.1.8 Domain of sender address does not exist",
     "policy"),
    ("host mx.example[192.0.2.1] said: Requested action not taken: mailbox unavailable Reject "
     "due to policy restrictions.", "policy"),
    # a remote's temporary DNS trouble is its own (other); a DMARC verdict stays policy
    ("host mx.example[192.0.2.1] said: 450 4.4.0 <email@example.com> Temporary DMARC DNS lookup "
     "failure (G1E)", "other"),
    ("host mx.example[192.0.2.1] said: 451 4.7.26 Unauthenticated email from domain-name is not "
     "accepted due to domain's DMARC policy, but temporary DNS failures prevent authentication.",
     "policy"),
    # a domain's hourly quota is throttling, not a full mailbox; "temporary failure, please try
    # again later" is the remote's trouble, not greylisting
    ("host mx.example[192.0.2.1] said: 550 5.4.7 <user@example.com>: Recipient address rejected: "
     "Recipients Domain Hourly Quota Exceeded", "rate_limited"),
    ("host mx.example[192.0.2.1] said: 421 Temporary failure, please try again later.", "other"),
    ("host mx1.latinmail.com[62.37.236.140] said: 550 <sachp@latinmail.com>: Destinatario "
     "desconocido o mailbox lleno", "recipient_unknown"),
    # held-back part 5's word families (28ee229), one or two texts each from realworld.tsv: the
    # tuning floors alone let any of the three rows go (9, 7 and 18 texts of 1,154)
    ("host mx.example[192.0.2.1] said: 550 <u@b.example>: inactive user", "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: This address no longer accepts mail.",
     "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 550 User (u@b.example) unknown.", "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 503 All recipients are invalid", "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 550 Unable to relay for u@b.example", "policy"),
    ("host mx.example[192.0.2.1] said: 553 User refused to receive this mail.", "policy"),
    # held-back part 6's families (December 2026), in words of their own: relaying refused in
    # other words beats the RCPT TO layer; a refused sender verification is policy although it
    # quotes "no such user"; the remote's DNS check of us; an address of ours that does not
    # match; spelling variants; the bare address between noun and verdict; a plural or
    # "concurrent" connection limit; a busy mailbox is the remote's state, not a throttle
    ("host mx.example[192.0.2.1] said: 550 this host does not relay for other domains (in reply "
     "to RCPT TO command)", "policy"),
    ("host mx.example[192.0.2.1] said: 553 domain is not in the rcpthosts file (in reply to "
     "RCPT TO command)", "policy"),
    ("host mx.example[192.0.2.1] said: 550 Sender verification failed: no such user (in reply "
     "to RCPT TO command)", "policy"),
    ("host mx.example[192.0.2.1] said: 550 DNS check failed for your domain", "policy"),
    ("host mx.example[192.0.2.1] said: 550 Your sender domain does not match the envelope",
     "policy"),
    ("host mx.example[192.0.2.1] said: 550 5.1.1 unroutable address", "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 550 user u@b.example not found", "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 550 the mailbox may not exist", "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 421 4.3.2 Concurrent sessions limit exceeded",
     "rate_limited"),
    ("host mx.example[192.0.2.1] said: 450 4.2.1 Mailbox is busy (in reply to RCPT TO "
     "command)", "other"),
    ("host mx.example[192.0.2.1] said: 554 refused", "policy"),
    ("host mx.example[192.0.2.1] said: 550 rejected (in reply to RCPT TO command)",
     "recipient_unknown"),
    # held-back part 7's families (December 2026), in words of their own: our HELO, sender or
    # IP refused in short words; blocks without a block word; a limit worded as a maximum, a
    # threshold or a count per unit of time; SASL failures in other words; a 552 that names a
    # size or a loop; the remote's own timeouts; an account that may not receive or is not
    # local; Postfix's own errno and TLS texts; a bracketed count is not a host name
    ("host mx.example[192.0.2.1] said: 550 bad HELO hostname", "policy"),
    ("host mx.example[192.0.2.1] said: 553 MAIL FROM not valid for this host", "policy"),
    ("host mx.example[192.0.2.1] said: 554 envelope sender is unverified", "policy"),
    ("host mx.example[192.0.2.1] said: 550 client IP check failed", "policy"),
    ("host mx.example[192.0.2.1] said: 550 No access from your host", "policy"),
    ("host mx.example[192.0.2.1] said: 553 this server denies relaying", "policy"),
    ("host mx.example[192.0.2.1] said: 554 black domain", "policy"),
    ("host mx.example[192.0.2.1] said: 552 too many identical messages", "policy"),
    ("host mx.example[192.0.2.1] said: 450 maximum recipients per hour reached", "rate_limited"),
    ("host mx.example[192.0.2.1] said: 452 you hit the maximum for today", "rate_limited"),
    ("host mx.example[192.0.2.1] said: 552 message body too large", "other"),
    ("host mx.example[192.0.2.1] said: 552 looping mail detected", "loop"),
    ("host mx.example[192.0.2.1] said: 535 auth error, try again", "auth"),
    ("host mx.example[192.0.2.1] said: 535 login or password wrong", "auth"),
    ("host mx.example[192.0.2.1] said: 501 invalid base64 data", "auth"),
    ("host mx.example[192.0.2.1] said: 554 Authentication failure[1]", "auth"),
    ("host mx.example[192.0.2.1] said: 451 session timeout", "timeout"),
    ("host mx.example[192.0.2.1] said: 451 problem processing commands, retry later", "other"),
    ("host mx.example[192.0.2.1] said: 550 user is not allowed to receive mail",
     "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 550 recipient is not local here", "recipient_unknown"),
    ("host mx.example[192.0.2.1] said: 550 Indirizzo sconosciuto", "recipient_unknown"),
    ("connect to mx.example[192.0.2.1]:25: Network is down", "refused"),
    ("TLS library problem", "tls"),
    # held-back part 10's rule-decided misses as families, in words of their own: the remote's
    # system failure, its disk and a busy box beat a weak "try again later" or "busy"; a 503 is
    # a sequence error, not the recipient; our IP filtered, many invalid recipients counted
    # against us
    ("host mx.example[192.0.2.1] said: 451 temporary system failure, retry later", "other"),
    ("host mx.example[192.0.2.1] said: 452 not enough disk space on server, try again later",
     "other"),
    ("host mx.example[192.0.2.1] said: 450 4.2.1 the box is busy, retry", "other"),
    ("host mx.example[192.0.2.1] said: 503 out of order (in reply to RCPT TO command)", "other"),
    ("host mx.example[192.0.2.1] said: 421 your IP 192.0.2.9 is filtered here", "policy"),
    ("host mx.example[192.0.2.1] said: 421 please register your IP with our postmaster first",
     "policy"),
    ("host mx.example[192.0.2.1] said: 550 5.7.1 high number of invalid recipients sent from "
     "your server", "policy"),
])
def test_context_decides(text, cls):
    assert reasons.classify(text) == cls


@pytest.mark.parametrize(("reply", "cls"), [
    # the basic code and the command alone (RFC 5321): a 5xx to RCPT TO refuses the recipient,
    # to MAIL FROM, HELO or the greeting refuses us; 552 is storage; elsewhere it names nothing
    ("550 Nope (in reply to RCPT TO command)", "recipient_unknown"),
    ("550 Nope (in reply to MAIL FROM command)", "policy"),
    ("550 Nope (in reply to HELO command)", "policy"),
    ("552 Nope (in reply to end of DATA command)", "mailbox_full"),
    # a 5xx at the end of DATA that names nothing refuses our message (held-back part 6: "554
    # Rejected", SES's "554 Transaction failed: Address contains illegal characters"); a 50x
    # there is a protocol error. A 553 that answers nothing named says nothing either: servers
    # use it for our sender and relaying as often as for "mailbox name not allowed" (held-back
    # part 7: "553 host denies the sender", "553 host denies relay", "553 Header Error")
    ("550 Nope (in reply to end of DATA command)", "policy"),
    ("504 Nope (in reply to end of DATA command)", "other"),
    ("553 Nope", "other"),
    ("553 Nope (in reply to RCPT TO command)", "recipient_unknown"),
    ("550 Nope", "other"),
    ("450 Nope (in reply to RCPT TO command)", "other"),
    # a reply quoted without Postfix's note that names RCPT itself answers RCPT TO
    ("550 Command RCPT User <u@b.example> not OK", "recipient_unknown"),
    # (no layer names it, test_rule_layers_leave_unnamed; the fallback reads "user … not ok")
    ("550 Command User <u@b.example> not OK", "recipient_unknown"),
    # the enhanced code's subject and detail (RFC 3463), read with the command
    ("550 5.1.0 Nope (in reply to RCPT TO command)", "recipient_unknown"),
    ("550 5.1.0 Nope (in reply to MAIL FROM command)", "policy"),
    ("550 5.1.1 Nope (in reply to MAIL FROM command)", "policy"),
    ("553 5.1.7 Nope (in reply to RCPT TO command)", "policy"),
    ("550 5.2.1 Nope (in reply to RCPT TO command)", "recipient_unknown"),
    ("452 4.2.2 Nope (in reply to RCPT TO command)", "mailbox_full"),
    ("552 5.2.3 Nope (in reply to end of DATA command)", "other"),
    ("451 4.4.2 Nope (in reply to end of DATA command)", "timeout"),
    ("554 5.4.6 Nope (in reply to end of DATA command)", "loop"),
    ("501 5.5.4 Nope (in reply to MAIL FROM command)", "other"),
    ("535 5.7.8 Nope (in reply to AUTH command)", "auth"),
    ("530 5.7.10 Nope (in reply to MAIL FROM command)", "tls"),
    ("421 4.7.28 Nope (in reply to end of DATA command)", "rate_limited"),
    ("550 5.7.1 Nope (in reply to RCPT TO command)", "policy"),
    ("421 4.7.0 Nope (in reply to RCPT TO command)", "other"),
    # words beat codes where servers misuse them
    ("550 5.7.1 No mailbox found (in reply to RCPT TO command)", "recipient_unknown"),
    ("550 5.1.1 <a@b.example>: unauthorized sender (in reply to RCPT TO command)", "policy"),
    ("554 5.7.1 Message Rejected Class=size limit (in reply to end of DATA command)", "other"),
    # a generic phrase and a code: the contract order breaks the tie
    ("451 4.7.1 Please try again later (in reply to RCPT TO command)", "greylisted"),
    ("451 4.3.0 Server has temporarily rejected this message", "other"),
])
def test_the_smtp_context_decides_when_no_phrase_does(reply, cls):
    assert reasons.classify(f"host mx.example.com[192.0.2.1] said: {reply}") == cls


def test_context_reads_the_command_and_both_codes():
    text = reasons.normalize("host mx.example.com[192.0.2.1] said: 550-5.1.1 <u@x.example>: "
                             "User unknown (in reply to RCPT TO command)").lower()
    assert reasons.context(text)[2:] == ("rcpt to", "550", (5, 1, 1))
    assert reasons.context("host x refused to talk to me: 554 go away")[2:] == (
        "greeting", "554", None)
    assert reasons.context("host x said: 550 command rcpt user <addr> not ok")[2:] == (
        "rcpt to", "550", None)
    assert reasons.context("connect to x[192.0.2.1]:25: connection refused")[1:] == (
        "", None, None, None)
    # a text that starts with a reply code is a reply quoted without "host X said:"
    assert reasons.context("553 invalid") == ("", "553 invalid", None, "553", None)


def test_bracketed_words_are_read_bracketed_ids_are_not():
    # held-back part 4 found it: "[Too many sessions opened]" was dropped as a token
    assert reasons.normalize("421 - [Too many sessions opened]") == (
        "421 - [Too many sessions opened]")
    assert reasons.classify("host mx.example.com[192.0.2.1] said: 421 - [Too many sessions "
                            "opened]") == "rate_limited"
    assert reasons.normalize("250 [dMDIcuXEPaWkLrAnT9uJTA.uk12] x [AM4PEPF0002.prod 2026-11-29 "
                             "08DD]") == "250 [ID] x [ID]"
    # a host is a dotted name or carries an address, path or placeholder with a dot, colon or
    # slash; held-back part 7 found "Authentication failure[0]" read as a host and never read
    assert reasons.normalize("526 Authentication failure[0]") == "526 Authentication failure[0]"
    assert reasons.normalize("localhost[127.0.0.1] x[/run/lmtp] smtp.example.com[IP] "
                             "h[2001:db8::1]:25") == "HOST HOST HOST HOST"


def test_lower_regex_keeps_escapes():
    assert reasons._lower_regex(r"\S+ TLS\b[A-Z]") == r"\S+ tls\b[a-z]"


def _holds_a_gate_word(items: list, gate: tuple[str, ...]) -> bool:
    """Whether every match of a parsed pattern holds one of the gate's substrings: some literal
    run of the sequence holds one, or some group, alternation (every branch) or repeat (at least
    once) in it does."""
    from re import _constants as c  # the parser's own tree: the gate is checked against it
    run: list[str] = []
    for op, av in [*items, (None, None)]:
        if op is c.LITERAL:
            run.append(chr(av))
            continue
        if any(q in "".join(run) for q in gate):
            return True
        # the parser moves a prefix shared by all branches out ("refused|reject": "re" + …)
        prefix = [(c.LITERAL, ord(ch)) for ch in run]
        run = []
        if op is c.SUBPATTERN and _holds_a_gate_word(av[-1], gate):
            return True
        if op is c.BRANCH and all(_holds_a_gate_word(prefix + list(b), gate) for b in av[1]):
            return True
        if (op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1
                and _holds_a_gate_word(av[2], gate)):
            return True
    return False


@pytest.mark.parametrize("rule", [r for r in reasons.RULES if r.quick], ids=lambda r: r.cls)
def test_a_rows_gate_words_are_in_every_match_of_its_pattern(rule):
    # the gate is written by hand next to the pattern; a new alternative without one of its
    # words would never run (a silent miss), so the pattern's own tree is checked here
    from re import _parser
    assert _holds_a_gate_word(_parser.parse(rule.pattern.pattern), rule.quick)
