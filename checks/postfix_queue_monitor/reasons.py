"""Deferral reason classes (docs/reasons.md): every delay or bounce text falls in one class.

One data-driven table, :data:`RULES`. Each rule names a class, a regular expression and where
the expression looks:

- ``local``: Postfix's own words (``connect to …: Connection refused``, ``Host or domain name not
  found``, ``lost connection with … while …``), i.e. the text before a remote's reply;
- ``reply``: what the remote server said (after ``said:`` or ``refused to talk to me:``);
- ``any``: the whole text.

Rules are *strong* (a phrase that says what happened) or *weak* (an SMTP/DSN code alone, or a
bare "try again later"). A strong match anywhere beats every weak one; among rules of the same
strength the class that comes first in the contract order wins. So Gmail's 4.7.28 "rate limited
… spam" is ``rate_limited`` (both strong, rate_limited first), a bare "4.7.1 Try again later" is
``greylisted`` (weak greylist before weak 4.7.1 policy), and "4.3.0 Temporary system problem. Try
again later" is ``other`` (a strong remote-resource phrase beats the weak greylist).

"delivery temporarily suspended: X" is classified by X. Classes are about meaning: "refused to
talk to me" is a reply, not a refused connection (``refused`` only looks at Postfix's own words);
the remote's "Sender address rejected: Domain not found" is its policy about us, not our DNS
(``dns`` only looks at Postfix's own words); "This mail is unauthenticated" (SPF/DKIM) is
``policy``, not ``auth``.

Three kinds of context override the words:

- a local delivery agent's own error (``Command output: …``, ``Command died with status``, a
  ``.forward`` or alias database problem) is ``transport`` whatever the agent printed
  ("Connection refused", "authentication failure", "time limit"); only ``mailbox_full`` (its
  quota) and ``loop`` keep their class there;
- a reply ``(in reply to MAIL FROM command)`` is about our sender: what would read as
  ``recipient_unknown`` ("551 invalid address") is ``policy``, and so is a 5xx reply there that
  no rule names;
- a 5xx greeting that names nothing (``refused to talk to me: 554 mx.example.com``) refuses us,
  the client: ``policy``.

Rules match the lower-cased text (see :func:`_lower_regex`); the corpus they are measured on is
``tests/fixtures/reasons/`` (real texts with their sources, and a held-back part).
"""

from __future__ import annotations

import re
from functools import lru_cache

CLASSES: tuple[str, ...] = (
    "loop", "tls", "auth", "dns", "rate_limited", "greylisted", "mailbox_full",
    "recipient_unknown", "refused", "timeout", "lost_connection", "policy", "transport", "other",
)
_ORDER = {c: i for i, c in enumerate(CLASSES)}

_SUSPENDED = re.compile(r"^\s*delivery temporarily suspended:\s*", re.I)
#: where the remote's reply starts: "host X said: 550 …", "host X refused to talk to me: 554 …"
_REPLY = re.compile(r"\b(?:said|refused to talk to me):\s*", re.I)
#: the remote's SMTP reply code right after "said:" (multi-line replies: "421-4.7.0 …")
_SMTP_CODE = re.compile(r"^([245])\d\d(?:[\s-]|$)")
#: an RFC 3463 enhanced status code, not part of an IP address or a longer dotted number
_DSN = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


class Rule:
    """One row of the table. Its patterns are compiled on first use, not at import: a check on
    an empty queue never classifies, and compiling the table cost ~5 ms of every start-up.
    (A plain class, not a dataclass: importing dataclasses cost ~8 ms more.)"""

    __slots__ = ("cls", "regex", "scope", "weak", "unless_regex", "_pattern", "_unless")

    def __init__(self, cls: str, regex: str, scope: str = "any", weak: bool = False,
                 unless_regex: str | None = None):
        self.cls = cls
        self.regex = regex
        self.scope = scope          # "any", "local" (Postfix's own words), "reply" (the remote's)
        self.weak = weak            # a code alone or a generic phrase: loses to any strong match
        self.unless_regex = unless_regex  # a veto: the rule does not fire when this matches
        self._pattern: re.Pattern[str] | None = None
        self._unless: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        """Matches the lower-cased text (see :func:`_lower_regex`)."""
        if self._pattern is None:
            self._pattern = re.compile(_lower_regex(self.regex))
        return self._pattern

    @property
    def unless(self) -> re.Pattern[str] | None:
        if self._unless is None and self.unless_regex:
            self._unless = re.compile(_lower_regex(self.unless_regex))
        return self._unless

    def __repr__(self) -> str:
        return f"Rule({self.cls!r}, {self.regex!r}, {self.scope!r}, weak={self.weak})"


def _lower_regex(regex: str) -> str:
    """The pattern with its literal letters lower-cased (escapes such as ``\\S`` kept), for
    matching a lower-cased text without ``re.I``: three to five times faster on these long
    alternations, which made the classifier's cost per distinct text."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        if regex[i] == "\\":
            out.append(regex[i:i + 2])
            i += 2
        else:
            out.append(regex[i].lower())
            i += 1
    return "".join(out)


def _r(cls: str, pattern: str, scope: str = "any", weak: bool = False,
       unless: str | None = None) -> Rule:
    assert cls in _ORDER, cls
    return Rule(cls, pattern, scope, weak, unless)


#: SPF/DKIM/DMARC words: "unauthenticated" mail in that sense is the remote's policy, not SASL
_SPF_DKIM = (r"\b(?:SPF|DKIM|DMARC|Sender Policy Framework)\b|"
             r"unauthenticated (?:e-?mail|mail|message)|(?:is|are) unauthenticated")

#: The pattern table, in contract order (the order here is for reading; precedence comes from
#: the class order and strength, see :func:`classify`).
RULES: tuple[Rule, ...] = (
    # -- loop: any mail loop or hop limit ---------------------------------------------------
    _r("loop", r"loops back to myself|mail forwarding loop|\bmail loop\b|routing loop|"
               r"loop detected"),
    _r("loop", r"too many hops|hop count exceeded|too many \"?received\"? headers|"
               r"message has been forwarded too many times|max(imum)? hops? (count )?exceeded"),
    _r("loop", r"\b[45]\.4\.(?:6|14)\b", scope="reply", weak=True),
    # -- tls: we could not get (a trusted) TLS ------------------------------------------------
    _r("tls", r"TLS is required|Cannot start TLS|Server certificate not (?:trusted|verified)|"
              r"certificate verif\w* fail|must issue a STARTTLS command first|"
              r"STARTTLS (?:is )?required|TLS (?:is )?not available|TLS required|"
              r"(?:TLS|SSL) handshake fail|encryption required|requires? (?:TLS|encryption)|"
              r"TLS (?:negotiation|connection) (?:failed|required)|no TLSA|\bDANE\b|"
              r"over a TLS connection|pipeline after STARTTLS"),
    _r("tls", r"\b[45]\.7\.(?:4|5|10)\b", scope="reply", weak=True),
    # -- auth: SASL failed or required --------------------------------------------------------
    _r("auth", r"SASL (?:authentication|login) fail|cannot authenticate|"
               r"authentication (?:required|failed|failure|unsuccessful|credentials invalid|"
               r"not allowed)|(?:not|un) ?authenticated to send|client (?:was )?not authenticated|"
               r"username and password not accepted|invalid credentials|\bpassword required|"
               r"(?:sender|client) must authenticate|SMTP AUTH (?:is )?(?:required|disabled)|"
               r"smtpclientauthentication is disabled|unauthenticated senders? not allowed|"
               r"login attempts|identity changes|log in with your web browser|"
               r"authentification (?:requise|invalide)|code d'authentification",
       unless=_SPF_DKIM + r"|excessive authentication"),
    _r("auth", r"\b[45]\.7\.(?:8|9|57|139|3)\b", scope="reply", weak=True, unless=_SPF_DKIM),
    # -- dns: our lookup of the destination failed (Postfix's own words only) -----------------
    _r("dns", r"Host or domain name not found|Name service error|Name server loop|"
              r"MX host \S+ has (?:malformed|invalid)|unable to look up|no MX host|"
              r"\(nullMX\)|does not accept mail|malformed (?:domain|name server)|"
              r"DNS (?:lookup|resolution) (?:fail|error)", scope="local"),
    # -- rate_limited: the remote throttles us ------------------------------------------------
    _r("rate_limited", r"rate[- ]?limit|\bthrottl|unusual rate|at a rate that|too quickly|"
                       r"too many (?:[\w-]+ ){0,2}?(?:connections|sessions|"
                       r"messages|mails?|e-?mails|recipients|rcpt|requests)|too much mail|"
                       r"unexpected volume|excessive volume|"
                       r"(?:server|agent|system|service|host)s? (?:is |are )?(?:too )?busy|"
                       r"(?:connection|sending|message|messaging|recipient|relay|session|daily|"
                       r"hourly|peak)(?: [\w-]+){0,2} (?:rate )?limits? (?:exceeded|reached)|"
                       r"exceeded (?:the |your )?(?:connection|sending|message|messaging|"
                       r"recipient|rate) (?:rate )?limits?|frequency limited|"
                       r"max(?:imum)? (?:number of )?messages? per (?:session|connection)|"
                       r"exceeded its quota for sending|trop de connexions|"
                       r"Denial of Service|\[(?:TS01|TS02|TSS04|TSS05)\]|\b4\.16\.5\d\b|"
                       r"temporarily deferred due to (?:unexpected|excessive)? ?(?:volume|user)|"
                       r"traffic (?:is )?too high|try again (?:later|in \w+)[^.]*too many|"
                       r"exceeded (?:\w+ ){0,2}limit for the number of messages|"
                       r"(?:organization|tenant|domain) (?:\w+ )?quota exceeded|"
                       r"number of concurrent connections|too much e-?mail in a short|"
                       r"account service is temporarily unavailable",
       unless=r"permanently deferred|been (?:temporarily )?blocked|blocked for the day|"
              r"too many invalid recipients"),
    # -- greylisted -----------------------------------------------------------------------------
    _r("greylisted", r"gr[ea]y[- ]?list|greylisting|gr[ea]y-?listed|"
                     r"internal resource temporarily unavailable|"
                     r"mimecast\.com/docs/DOC-1369#451|temporarily (?:deferred|rejected), "
                     r"please (?:retry|try again)|first time (?:sender|delivery attempt)"),
    _r("greylisted", r"try (?:again )?later|come back later|please retry (?:later|soon)|"
                     r"temporarily (?:deferred|rejected)|try again in \w+ (?:seconds|minutes)",
       scope="reply", weak=True),
    # -- mailbox_full ---------------------------------------------------------------------------
    _r("mailbox_full", r"mailbox (?:is )?full|mailbox (?:\S+ )?(?:quota|size) (?:exceeded|limit)|"
                       r"over ?quota|quota (?:exceeded|exceed)|exceeded (?:the |his |her |their )?"
                       r"(?:storage|quota|mailbox)|disk quota|insufficient (?:mailbox )?space in|"
                       r"mailbox (?:has )?(?:exceeded|exceeds)|user'?s? (?:mailbox|account) is "
                       r"(?:over|full)|error writing message: File too large|"
                       r"out of (?:mailbox )?(?:space|storage) for|mailbox full|"
                       r"boite (?:du destinataire )?pleine|quota violation",
       unless=r"timeout quota"),
    _r("mailbox_full", r"\b[45]\.2\.2\b", weak=True),
    # -- recipient_unknown: the mailbox does not exist or cannot be verified -----------------
    _r("recipient_unknown",
       r"user unknown|unknown user|no such (?:user|mailbox|recipient|account|address|person)|"
       r"(?:user|mailbox|recipient|account|address|e-?mail account)(?: that you tried to reach)?"
       r" (?:does not|doesn'?t|does ?n.t|did not) exist|"
       r"(?:recipient|user|mailbox|address|account) (?:\S+ )?not found|RecipientNotFound|"
       r"mailbox (?:not found|unavailable|disabled|is disabled|is inactive|inactive|is frozen|"
       r"frozen)|boite du destinataire archiv|"
       r"unverified address|invalid[- ](?:recipient|mailbox|user|address)|not our customer|"
       r"(?:doesn't|does not) have an? \S+ account|unknown (?:recipient|address|mailbox|local)|"
       r"5\.4\.1 (?:\S+ )?(?:all )?Recipient address(?:es)? rejected ?: Access denied|"
       r"undeliverable address|"
       r"unroutea?ble (?:address|mail domain|domain)|address unknown|"
       r"(?:user|recipient|mailbox|addressee) unknown|recipient (?:is )?unavailable|"
       r"(?:recipient|address)(?: address)? (?:cannot|could not|can ?not) be verified|"
       r"mailbox has been (?:blocked|disabled|suspended|deactivated)|due to inactivity|"
       r"bad (?:recipient )?address syntax|domain not found|no mailbox here|"
       r"account (?:is |has been )?"
       r"(?:disabled|inactive|suspended|closed)|user (?:account )?(?:is )?(?:disabled|inactive|"
       r"suspended)|recipient account is ?blocked|compte du destinataire est bloqu|"
       r"recipient (?:address )?rejected: (?:user|mailbox|domain not found|inactive\b|blocked\b|"
       r"disabled\b)|is no longer valid|"
       r"p=(?:NoSuchUser|DisabledUser)|recipient address \S+ is not a valid|"
       r"destinatario (?:desconocido|inexistente)|usuario (?:desconocido|inexistente)|"
       r"empf(?:ae|ä)nger unbekannt|destinataire inconnu|utilisateur inconnu|"
       r"utente sconosciuto|destinat[aá]rio (?:desconhecido|inexistente)",
       unless=r"Sender address rejected|sender account|too many invalid recipients|"
              r"sender address does not|reject(?:ed)? due to policy"),
    _r("recipient_unknown", r"Recipient address rejected\.?\s*(?:\(in reply|$)", scope="reply"),
    _r("recipient_unknown", r"\b[45]\.1\.(?:1|2|3|10|6)\b|\b5\.2\.1\b", scope="reply", weak=True),
    _r("recipient_unknown", r"^bad address syntax", scope="local"),
    # -- refused: the connection could not be opened (Postfix's own words only) -----------------
    _r("refused", r"Connection refused|No route to host|Network is unreachable|"
                  r"Host is unreachable|Cannot assign requested address|"
                  r"connect to \S+: (?:No such file or directory|"
                  r"Permission denied|Address family not supported)", scope="local"),
    # -- timeout --------------------------------------------------------------------------------
    _r("timeout", r"timed out|time ?out exceeded|timeout (?:while|waiting|reached)|"
                  r"time limit exceeded|\btimeout\b.*(?:closing|expired)|read timeout|"
                  r"connection expired"),
    _r("timeout", r"\b4\.4\.2\b", scope="reply", weak=True),
    # -- lost_connection ------------------------------------------------------------------------
    _r("lost_connection", r"lost connection with|connection reset by peer|"
                          r"remote (?:mail )?server disconnected|unexpected (?:EOF|disconnect)|"
                          r"connection (?:was )?(?:closed|dropped) (?:by|unexpectedly)|"
                          r"broken pipe|dropped connection"),
    # -- policy: blocked, blacklisted, spam, policy, relay access denied ---------------------
    _r("policy", r"block(?:ed|ing)?\b|block ?list|black ?list|deny ?list|\bdenylisted|bloqu|"
                 r"\blisted (?:at|in|on)|found on one or more|\bDNSBL|\bRBL\b|spamhaus|"
                 r"barracuda|spamcop|\bsorbs|\bspam|unsolicited|\bjunk|(?:\b|mail)policy|policies|"
                 r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|"
                 r"not permitted to relay|relay not permitted|reverse (?:hostname|DNS|lookup)|"
                 r"\bPTR\b|rDNS|client host rejected|sender address rejected|sender rejected|"
                 r"helo command rejected|(?:HELO|EHLO)\b.{0,20}(?:invalid|rejected)|"
                 r"access denied|not (?:accepted|allowed|authorized)|invalid sender|"
                 r"emetteur invalide|\bFrom:.{0,20}invalid|forgery|forged|\badvertis|"
                 r"permanently deferred|poor reputation|reputation|virus|malware|phish|"
                 r"banned|prohibited|denied|rejected (?:for|due|as|by|because)|"
                 r"message (?:content )?rejected|" + _SPF_DKIM + r"|Sender Policy Framework|"
                 r"content filter|suspicious|no SMTP service|not accepting connections|"
                 r"service refus|too many invalid recipients|"
                 r"unresolvable (?:\S+ )?(?:from|sender) domain|administrative prohibition|"
                 r"\bmail rejected\b|mail rejete|invalid DNS\b|sender verif\w* fail|spoof|"
                 r"abusive|excessive (?:rejected|invalid|authentication)|"
                 r"domain of sender address",
       unless=r"(?:OFR|LPN)\d*_505\b|policy size|temporary (?:\w+ )?DNS lookup fail"),
    _r("policy", r"\b5\.7\.\d{1,3}\b|\b4\.7\.1\b|\b[45]\.1\.[78]\b", scope="reply", weak=True),
    # -- transport: our own delivery agents / local configuration ------------------------------
    _r("transport", r"mail transport unavailable|unknown mail transport|transport \S+ "
                    r"(?:not found|unavailable)|mail system configuration error|"
                    r"configuration error|Command died with status|delivery agent|"
                    r"service \S+ is not available|no delivery agent|transport is unavailable|"
                    r"(?:user|table|alias) lookup (?:error|failure)",
       scope="local"),
    # -- other (named so that a remote's own trouble beats a weak "try again later") ----------
    _r("other", r"insufficient system storage|queue file write error|system problem|"
                r"local error in processing|not accepting network messages|"
                r"server configuration (?:problem|error)|temporary local problem|"
                r"message (?:size exceeds|is too (?:big|large)|too (?:big|large))|"
                r"exceeds (?:the )?(?:fixed )?maximum message size|system (?:is )?overloaded|"
                r"resources? (?:temporarily )?(?:unavailable|exhausted)|syntax error|"
                r"server (?:is )?temporarily unavailable|(?:OFR|LPN)\d*_505\b|"
                r"temporary (?:server|system) error|mail server temporarily rejected|"
                r"temporarily unavailable|temporary failure|"
                r"temporary (?:\w+ )?DNS lookup fail|our database returned|"
                r"unable to correctly read",
       scope="reply"),
    _r("other", r"\b[45]\.3\.\d\b|\b[45]\.2\.3\b", scope="reply", weak=True),
)

#: A local delivery agent's own error (local(8), pipe(8), virtual(8): procmail, maildrop,
#: Dovecot's LDA, the alias database, .forward files): ``transport`` whatever words the agent's
#: output carries ("Connection refused", "authentication failure", "time limit"), except a full
#: mailbox or a loop, which keep their class.
_AGENT = re.compile(  # matched against the lower-cased text
    r"command output:|command died with status|command time limit exceeded|"
    r"can't create user output file|^temporary failure\b|error reading forwarding file|"
    r"alias database (?:owner|unavailable)|cannot find alias database")
_AGENT_KEEPS = ("loop", "mailbox_full")
#: the remote's reply was to our MAIL FROM: it is about our sender, not the recipient
_MAIL_FROM = re.compile(r"\(in reply to mail from command\)")

_SORTED: tuple[Rule, ...] = tuple(sorted(RULES, key=lambda r: (r.weak, _ORDER[r.cls])))


def _strip(text: str) -> str:
    text = text or ""
    while True:
        m = _SUSPENDED.match(text)
        if not m:
            return text.strip()
        text = text[m.end():]


#: what varies between otherwise equal texts and says nothing about the cause (host names such
#: as d1.ess.barracudanetworks.com or mx.spam-filter.example, addresses such as spam@x,
#: Gmail's per-message token): replaced before classifying, so that words in names cannot pick a
#: class and texts that differ only there share one cache entry.
_NORMALIZE: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # (a quick test, the pattern, its replacement); every pattern starts only where a word does
    ("[", re.compile(r"(?<![^\s(<])[^\s\[\]()<>]+\[[^\]\s]*\](?::\d+)?"), "HOST"),
    # the local part excludes "@": "<@@@…" unclosed was quadratic (1.3 s at 16,000 chars)
    ("@", re.compile(r"<[^<>\s@]*@[^<>\s]*>"), "<ADDR>"),
    ("@", re.compile(r"(?<![\w.+=-])[\w.+=-]+@[\w-]+(?:\.[\w-]+)*"), "ADDR"),
    ("gsmtp", re.compile(r"(?<!\S)\S+ - gsmtp\b"), "- gsmtp"),
    # long bracketed tokens: Microsoft's "[AM4PEPF00025F97.EURPRD83.prod.outlook.com …]",
    # Mimecast's "[dMDIcuXEPaWkLrAnT9uJTA.uk12]"; short codes such as "[TSS04]" stay
    ("[", re.compile(r"\[[^\[\]]{12,}\]"), "[ID]"),
)


def normalize(text: str) -> str:
    """The text without its host names, addresses and per-message tokens."""
    for quick, pattern, repl in _NORMALIZE:
        if quick in text:
            text = pattern.sub(repl, text)
    return text


def split(text: str) -> tuple[str, str]:
    """(Postfix's own words, the remote's reply) of one delay text; the reply may be empty."""
    text = _strip(text)
    m = _REPLY.search(text)
    if not m:
        return text, ""
    return text[:m.start()], text[m.end():]


@lru_cache(maxsize=4096)
def classify(text: str) -> str:
    """The class of one delay or bounce text (cached: queues repeat a few texts many times,
    and texts that differ only in host names or addresses share an entry)."""
    return _classify(normalize(text or ""))


@lru_cache(maxsize=4096)
def _classify(text: str) -> str:
    local, reply = split(text.lower())
    whole = f"{local} {reply}" if reply else local
    agent = not reply and _AGENT.search(local) is not None
    cls = None
    for rule in _SORTED:
        if agent and rule.cls not in _AGENT_KEEPS:
            continue
        where = whole if rule.scope == "any" else local if rule.scope == "local" else reply
        if where and rule.pattern.search(where) and not (rule.unless and
                                                         rule.unless.search(whole)):
            cls = rule.cls
            break
    if agent:
        return cls or "transport"
    if reply and _MAIL_FROM.search(reply):
        # a refused MAIL FROM is about our sender: "551 invalid address" there is policy
        if cls == "recipient_unknown" or (cls is None and reply.lstrip()[:1] == "5"):
            return "policy"
    if cls is None and reply.lstrip()[:1] == "5" and "refused to talk to me:" in text.lower():
        # a 5xx greeting that names nothing ("554 mx.example.com") refuses us, the client
        return "policy"
    return cls or "other"


def codes(text: str) -> tuple[str | None, str | None]:
    """(the remote's SMTP reply code, the first enhanced status code) of a text, if any."""
    _, reply = split(text)
    m = _SMTP_CODE.match(reply.lstrip())
    dsn = _DSN.search(reply or text)
    return (m.group(0).strip(" -")[:3] if m else None,
            dsn.group(0) if dsn else None)


#: Postfix's own permanent failures (their texts carry no code): bounced, never retried.
_PERMANENT_LOCAL = re.compile(
    r"loops back to myself|^unknown user:|type=\w+: Host not found$|\(nullMX\)|"
    r"mail forwarding loop|error writing message: File too large", re.I)


@lru_cache(maxsize=4096)
def is_permanent(text: str) -> bool:
    """A 5xx reply or a 5.x.x status is permanent (the recipient will bounce); else temporary.

    The remote's reply code decides first (``450 4.1.1 … unverified address: … said: 550 5.1.1``
    is temporary), then the first enhanced status code, then a few of Postfix's own permanent
    texts that carry no code (``mail for … loops back to myself``, ``unknown user: "x"``).
    """
    smtp, dsn = codes(text)
    if smtp:
        return smtp.startswith("5")
    if dsn:
        return dsn.startswith("5")
    local, _ = split(text)
    return bool(_PERMANENT_LOCAL.search(local))


#: What an administrator should do about each class (printed as advice; nothing is run).
ACTIONS: dict[str, str] = {
    "loop": "fix the routing: mydestination, relayhost, transport_maps or the MX point back at "
            "this host (postconf -n); it will not clear by itself",
    "tls": "fix TLS for that destination: smtp_tls_security_level / smtp_tls_policy_maps, the CA "
           "files, or ask the remote to fix its certificate or offer STARTTLS",
    "auth": "fix SASL for the relay: credentials in smtp_sasl_password_maps (postmap it), "
            "smtp_sasl_auth_enable, smtp_sasl_security_options",
    "dns": "check DNS: the resolver (/etc/resolv.conf), the domain's MX/A records "
           "(dig MX <domain>), typos in the recipient domain",
    "rate_limited": "wait for the retry; slow down to that destination (a transport with a lower "
                    "smtp_destination_concurrency_limit / smtp_destination_rate_delay) and check "
                    "what you send (reputation, complaints)",
    "greylisted": "wait for the retry: greylisting clears on a later attempt",
    "mailbox_full": "wait for the retry; the recipient must free space",
    "recipient_unknown": "the address does not exist: tell the sender, fix the list",
    "refused": "the destination (or our relayhost / content filter) is not listening: check it "
               "is up and reachable on its port, and the firewall; then wait for the retry",
    "timeout": "check that outgoing port 25 is not blocked (firewall, provider) and the remote "
               "is up; then wait for the retry",
    "lost_connection": "the remote dropped the connection (its problem, or a middlebox: MTU, "
                       "TLS inspection); wait for the retry, look at the mail log if it persists",
    "policy": "we are blocked: check blocklists (Spamhaus, Barracuda), SPF/DKIM/DMARC, reverse "
              "DNS (PTR) and the content; ask for delisting",
    "transport": "fix the local delivery setup: the transport named in master.cf / "
                 "transport_maps is missing or failing (postfix check, the mail log)",
    "other": "read the example text and the mail log for that destination",
}

PERMANENT_ACTION = ("permanent failures will not succeed on retry: once the sender knows, "
                    "remove them with postsuper -d <queue id> (advice only, never run here)")


def action(cls: str, permanent: bool = False) -> str:
    """The suggested action for a class; permanent failures add the postsuper advice."""
    text = ACTIONS.get(cls, ACTIONS["other"])
    return f"{text}; {PERMANENT_ACTION}" if permanent else text
