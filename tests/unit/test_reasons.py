"""The deferral reason classifier (CONTRACT.md "Deferral reason classes").

Two sets of real-world texts: ``tuning.tsv`` (the patterns were written against it: every line
must be right) and ``heldback.tsv`` (written down before the patterns were tuned and never tuned
against: at least 95 % must be right; the misses are printed).
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
    assert reasons.classify("something nobody has ever written") == "other"
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
    reasons.classify.cache_clear()
    text = "connect to mx.example.com[192.0.2.1]:25: Connection refused"
    for _ in range(3):
        reasons.classify(text)
    info = reasons.classify.cache_info()
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
    reasons.classify.cache_clear()
    reasons._classify.cache_clear()
    texts = [f"host mx{i % 7}.example.com[192.0.2.{i % 250}] said: 550 5.1.1 "
             f"<user{i}@example.com>: Recipient address rejected: User unknown in virtual "
             f"mailbox table (in reply to RCPT TO command)" for i in range(20000)]
    started = time.perf_counter()
    assert {reasons.classify(t) for t in texts} == {"recipient_unknown"}
    elapsed = time.perf_counter() - started
    assert reasons._classify.cache_info().misses == 1
    assert elapsed < 2.0, f"20,000 texts took {elapsed:.2f} s"
