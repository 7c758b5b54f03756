"""Deferral reason classes (docs/reasons.md): every delay or bounce text falls in one class.

A text is read as an SMTP conversation, not as a bag of words. :func:`context` splits it into
Postfix's own words (``local``: ``connect to …: Connection refused``, ``lost connection with …
while …``), the remote's reply (after ``said:`` or ``refused to talk to me:``), the command that
reply answered (``(in reply to RCPT TO command)``; a greeting for ``refused to talk to me``; RCPT
TO when the reply names RCPT itself), the
basic reply code (``550``) and the enhanced status code (RFC 3463: class.subject.detail). The
class is then decided in layers, the first that speaks wins:

1. **A local delivery agent's own error** (``Command output: …``, ``Command died with status``,
   a ``.forward`` or alias database problem) is ``transport`` whatever the agent printed
   ("Connection refused", "authentication failure", "time limit"); only ``mailbox_full`` (its
   quota) and ``loop`` keep their class there.
2. **Phrases that say what happened** (:data:`RULES`, strong rows), in contract order. Words
   override codes because real servers misuse them: "5.7.1 No mailbox found", "5.1.1
   unauthorized sender", "5.7.1 … size limit".
3. **The enhanced status code** (:func:`_by_code`, RFC 3463/5248 subjects: X.1 addressing,
   X.2 mailbox, X.3 mail system, X.4 network/routing, X.5 protocol, X.7 security/policy) read
   with the command (X.1.x answering MAIL FROM is about our sender, answering RCPT TO about the
   recipient), together with the generic phrases (weak rows: a bare "try again later",
   "recipient rejected"); among these the contract order breaks ties, so a bare "4.7.1 Try
   again later" is ``greylisted`` and "451 4.3.2 Internal server error" ``other``.
4. **The basic reply code and the command** (:func:`_by_command`), when the text names nothing
   and carries no enhanced code: a 5xx to RCPT TO refuses the recipient
   (``recipient_unknown``), a 5xx to MAIL FROM, HELO/EHLO or the greeting refuses us
   (``policy``), 552 is the storage allocation RFC 5321 gives it (``mailbox_full``); a 503
   (bad sequence of commands) is ``other``, another 50x names nothing.
5. **The statistical fallback** (:mod:`reason_fallback`), when no layer above named a class: a
   naive Bayes model trained on the labelled corpus, ``other`` when it is unsure. Layers 3 and
   4 are *weak*: their class gives way to the model's where the model is at least 90 % sure of
   another (a forward-chaining evaluation over the corpus's parts chose that); what layers 1
   and 2 decide, an ``other`` row included, is final.

"delivery temporarily suspended: X" is classified by X. Postfix's own words and the remote's are
kept apart: "refused to talk to me" is a reply, not a refused connection (``refused`` and
``dns`` look only at Postfix's own words); the remote's "Sender address rejected: Domain not
found" is its policy about us; "This mail is unauthenticated" (SPF/DKIM) is ``policy``, not
``auth``.

Rules match the lower-cased text (see :func:`_lower_regex`); the corpus they are measured on is
``tests/fixtures/reasons/`` (real texts with their sources, and a held-back part).
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
#: an RFC 3463 enhanced status code, not part of a longer dotted number (the check of the
#: character before is in :func:`_first_dsn`: a look-behind here made the search 2.5x slower)
_DSN = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def _first_dsn(text: str) -> re.Match[str] | None:
    """The first enhanced status code in a text that is not the tail of an IP address."""
    for m in _DSN.finditer(text):
        if m.start() == 0 or text[m.start() - 1] not in "0123456789.":
            return m
    return None


class Rule:
    """One row of the table. Its patterns are compiled on first use, not at import: a check on
    an empty queue never classifies, and compiling the table cost ~5 ms of every start-up.
    (A plain class, not a dataclass: importing dataclasses cost ~8 ms more.)"""

    __slots__ = ("cls", "regex", "scope", "weak", "unless_regex", "quick", "_pattern",
                 "_unless")

    def __init__(self, cls: str, regex: str, scope: str = "any", weak: bool = False,
                 unless_regex: str | None = None, quick: tuple[str, ...] = ()):
        self.cls = cls
        self.regex = regex
        self.scope = scope          # "any", "local" (Postfix's own words), "reply" (the remote's)
        self.weak = weak            # a code alone or a generic phrase: loses to any strong match
        self.unless_regex = unless_regex  # a veto: the rule does not fire when this matches
        # substrings of which every match holds one: a row whose text holds none is skipped
        # without running its regex (a substring test costs a fraction of a failed search)
        self.quick = quick
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
       unless: str | None = None, quick: tuple[str, ...] = ()) -> Rule:
    assert cls in _ORDER, cls
    return Rule(cls, pattern, scope, weak, unless, quick)


#: SPF/DKIM/DMARC words: "unauthenticated" mail in that sense is the remote's policy, not SASL
_SPF_DKIM = (r"\b(?:SPF|DKIM|DMARC|Sender Policy Framework)\b|"
             r"unauthenticated (?:e-?mail|mail|message)|(?:is|are) unauthenticated")

#: the remote checking us: a sender verification or callout (even one that quotes "No Such User
#: Here"), its DNS check of our domain; policy, and never the recipient
_CHECKS_OF_US = r"sender (?:address )?(?:verif|callout)|DNS (?:check|verification) (?:\w+ )?fail"

#: many invalid recipients counted against us (a reputation verdict, policy): "too many invalid
#: recipients", "an excessively high number of invalid recipients originating from your account"
_MANY_INVALID = r"(?:too many|number of) invalid recipients"

#: words that make a recipient-looking text about our sender or a policy
_NOT_THE_RECIPIENT = (r"Sender address rejected|sender account|" + _MANY_INVALID + r"|"
                      r"sender address does not|reject(?:ed)? due to policy|" + _CHECKS_OF_US +
                      r"|\"mail from\"|mail ?from\"? (?:account|mailbox)")

#: words that make a policy-looking text a size limit or the remote's own DNS trouble
_NOT_POLICY = (r"(?:OFR|LPN)\d*_505\b|policy size|temporary (?:\w+ )?DNS lookup fail|"
               r"size limit\b")

#: a mailbox that holds too many messages is full, not a sender sending too many
_TOO_MANY_STORED = (r"has too many (?:messages|mails)|"
                    r"too many (?:messages|mails) (?:on the server|in (?:the |his |her |their |"
                    r"this )?(?:mail|in)box)")

#: "too many" that names mail looking alike, not a volume: a spam verdict, not throttling
_LOOKS_LIKE_SPAM = r"too many (?:same|similar|identical|duplicate)"

#: The pattern table, in contract order (the order here is for reading; precedence comes from
#: the class order and strength, see :func:`classify`).
RULES: tuple[Rule, ...] = (
    # -- loop: any mail loop or hop limit ---------------------------------------------------
    _r("loop", r"loops back to myself|mail forwarding loop|\bmail loop\b|routing loop|"
               r"loop detected|looping (?:message|mail)"),
    _r("loop", r"too many hops|hop count exceeded|too many \"?received\"? headers|"
               r"message has been forwarded too many times|max(imum)? hops? (count )?exceeded"),
    # -- tls: we could not get (a trusted) TLS ------------------------------------------------
    _r("tls", r"TLS is required|Cannot start TLS|Server certificate not (?:trusted|verified)|"
              r"certificate verif\w* fail|must issue a STARTTLS command first|"
              r"STARTTLS (?:is )?required|TLS (?:is )?not available|TLS required|"
              r"(?:TLS|SSL) handshake fail|encryption required|requires? (?:TLS|encryption)|"
              r"TLS (?:negotiation|connection) (?:failed|required)|no TLSA|\bDANE\b|"
              r"over a TLS connection|pipeline after STARTTLS|not using (?:a )?TLS|to use TLS|"
              r"TLS (?:\w+ )?(?:configuration|library) problem|(?:sent|send) with an encryption"),
    # -- auth: SASL failed or required --------------------------------------------------------
    _r("auth", r"SASL (?:authentication|login) fail|cannot authenticate|"
               r"authentication (?:required|failed|failure|unsuccessful|credentials invalid|type|"
               r"mechanism|"
               r"not allowed)|(?:not|un) ?authenticated to send|client (?:was )?not authenticated|"
               r"username and password not accepted|invalid credentials|\bpassword required|"
               r"(?:sender|client) must authenticate|SMTP AUTH (?:is )?(?:required|disabled)|"
               r"smtpclientauthentication is disabled|unauthenticated senders? not allowed|"
               r"login attempts|identity changes|log ?in (?:with|through|via) your web browser|"
               r"unauthenticated commands|oauth\b|auth failed|"
               # in other words: "451 auth error", "524 username or passwd is NULL", "523 cipher
               # text is invalid base64 format", "relay through this server without authentication"
               r"auth(?:entication)? error|user ?name (?:or|and) (?:password|passwd)|"
               r"login (?:or|and) (?:password|passwd)|invalid base64|base64 (?:format|data)|"
               r"without (?:smtp )?auth(?:entication)?\b|"
               r"authentification (?:requise|invalide)|code d'authentification",
       unless=_SPF_DKIM + r"|excessive authentication"),
    # -- dns: our lookup of the destination failed (Postfix's own words only) -----------------
    _r("dns", r"Host or domain name not found|Name service error|Name server loop|"
              r"MX host \S+ has (?:malformed|invalid)|unable to look up|no MX host|"
              r"\(nullMX\)|does not accept mail|malformed (?:domain|name server)|"
              r"DNS (?:lookup|resolution) (?:fail|error)|Name or service not known|"
              # other MTAs' own words (held-back part 8, tuning data since December 2026):
              # qmail's, a gateway's
              r"couldn't find any host named|failure of host ?name lookup", scope="local"),
    # -- rate_limited: the remote throttles us ------------------------------------------------
    _r("rate_limited", r"rate[- ]?limit|\bthrottl|unusual rate|at a rate that|too quickly|"
                       r"too fast\b|"
                       r"too many (?:[\w-]+ ){0,2}?(?:connections|sessions|"
                       r"messages|mails?|e-?mails|recipients|rcpt|requests)|too much mail|"
                       r"unexpected volume|excessive volume|"
                       r"\bbusy\b|quota for sending|sending quota|"
                       r"(?:connections?|sending|messages?|messaging|recipients?|relay|sessions?|daily|"
                       r"hourly|peak|concurrent)(?: [\w-]+){0,2} (?:rate )?limits? "
                       r"(?:exceeded|reached)|"
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
              r"too many invalid recipients|(?:mail ?box|\bbox|user) (?:is )?busy|" +
              _TOO_MANY_STORED +
              "|" + _LOOKS_LIKE_SPAM),
    # a limit worded as a maximum, a threshold or a count per unit of time: "455 Maximum
    # messages sent per minute reached", "the number of RCPT attempts is achieved the maximum
    # threshold", "has exceeded the max defers and failures per hour", "out of allow RCPT
    # numbers"; a maximum of the message's size, length or attachments is other
    _r("rate_limited", r"max(?:imum)? (?:\w+ ){0,3}?per (?:second|minute|hour|day)\b|"
                       r"per (?:second|minute|hour|day)(?: \w+){0,2} (?:reached|exceeded)|"
                       r"achieved the max|reached the max|exceeded the max|hit the max|"
                       r"max(?:imum)? threshold|out of allow(?:ed)?\b",
       unless=r"size|length|attachment|mailbox|quota|storage|disk",
       quick=("max", "per ", "allow")),
    # -- greylisted -----------------------------------------------------------------------------
    _r("greylisted", r"gr[ea]y[- ]?list|greylisting|gr[ea]y-?listed|"
                     r"internal resource temporarily unavailable|"
                     r"mimecast\.com/docs/DOC-1369#451|temporarily (?:deferred|rejected), "
                     r"please (?:retry|try again)|first time (?:sender|delivery attempt)"),
    _r("greylisted", r"try (?:again )?later|come back later|please retry (?:later|soon)|"
                     r"try again in \w+ (?:seconds|minutes)",
       scope="reply", weak=True),
    # -- mailbox_full ---------------------------------------------------------------------------
    _r("mailbox_full", r"mailbox (?:is )?full|mailbox (?:\S+ )?(?:quota|size) (?:exceeded|limit)|"
                       r"over ?quota|quota (?:exceeded|exceed)|exceeded (?:the |his |her |their )?"
                       r"(?:storage|quota|mailbox)|disk quota|insufficient (?:mailbox )?space in|"
                       r"mailbox (?:has )?(?:exceeded|exceeds)|user'?s? (?:mailbox|account) is "
                       r"(?:over|full)|error writing message: File too large|"
                       r"out of (?:mailbox )?(?:space|storage) for|mailbox full|"
                       r"boite (?:du destinataire )?pleine|quota violation|dis[ck] ?space quota|"
                       r"have enough (?:disk |storage )?space|has too many (?:messages|mails)",
       unless=r"timeout quota"),
    # storage words as a family: "Not enough storage space in user's mailbox", "Mailbox space
    # not enough", "exhausted allowed storage space", "recipient storage full", "quota usage
    # exceeded", "quota limit is exceeded", "the destination mailbox <x> is full"; the
    # remote's own "system storage" is other
    _r("mailbox_full", r"(?:not enough|insufficient|exhausted|out of)(?: \w+){0,2} "
                       r"(?:storage|space|quota)\b|"
                       r"(?:storage|space|quota)(?: \w+){0,2} (?:is )?(?:full|exhausted|"
                       r"exceeded|not enough|insufficient)\b|"
                       r"exceeded (?:the |his |her |their |its )?\w+ (?:mailbox |storage )?quota|"
                       r"(?:mail ?box|inbox)(?: \S+){0,2}? is full\b",
       unless=r"timeout quota|system storage|out of memory|(?:insufficient|not enough|no) "
              r"disk space",
       quick=("storage", "space", "quota", " full")),
    # -- recipient_unknown: the mailbox does not exist or cannot be verified -----------------
    _r("recipient_unknown",
       r"user unknown|unknown user|"
       r"no such (?:user|mailbox|recipient|account|address|person|domain)|"
       r"(?:user|mailbox|recipient|rcpt|account|address|e-?mail account)"
       r"(?: that you tried to reach| \S+)? (?:does not|doesn'?t|does ?n.t|did not|not|no) "
       r"exist|"
       r"(?:recipient|user|mailbox|address|account) (?:\S+ |\( ?addr ?\) )?not found|"
       r"RecipientNotFound|"
       r"mailbox (?:<?addr>? |\( ?addr ?\) |is |has been |\w+ly )?(?:not found|unavailable|"
       r"not available|disabled|inactive|frozen|suspended|deactivated)|"
       r"boite du destinataire archiv|non-?existent (?:user|mailbox|recipient|address|account)|"
       r"is not an? (?:known|valid|active|local) (?:user|recipient|mailbox|(?:e-?mail )?address)|"
       r"no mail ?box (?:\w+ ){0,3}?(?:found|here|available|by that name)|bad[_ ]recipient|"
       r"unverified address|invalid[- ](?:recipient|mailbox|user|address)|not our customer|"
       r"(?:doesn't|does not) have an? \S+ account|unknown (?:recipient|address|mailbox|local)|"
       r"5\.4\.1 (?:\S+ )?(?:all )?Recipient address(?:es)? rejected ?: Access denied|"
       r"undeliverable address|"
       r"unrout(?:e?a)?ble (?:address|mail domain|domain)|address unknown|"
       r"(?:user|recipient|mailbox|addressee) unknown|"
       r"recipient (?:account )?(?:is )?(?:unavailable|not available)|"
       r"(?:recipient|address)(?: address)? (?:cannot|could not|can ?not) be verified|"
       r"mailbox has been (?:blocked|disabled|suspended|deactivated)|due to inactivity|"
       r"bad (?:recipient )?address syntax|domain not found|"
       r"account (?:is |has been )?"
       r"(?:disabled|inactive|suspended|closed)|user (?:account )?(?:is )?(?:disabled|inactive|"
       r"suspended)|recipient account is ?blocked|compte du destinataire est bloqu|"
       r"recipient (?:address )?rejected: (?:user|mailbox|domain not found|inactive\b|blocked\b|"
       r"disabled\b)|is no longer valid|"
       r"p=(?:NoSuchUser|DisabledUser)|recipient address \S+ is not a valid|"
       r"destinatario (?:desconocido|inexistente)|usuario (?:desconocido|inexistente)|"
       r"empf(?:ae|ä)nger unbekannt|destinataire inconnu|utilisateur inconnu|"
       r"utente (?:sconosciuto|inesistente)|destinat[aá]rio (?:desconhecido|inexistente)|"
       r"destinatario (?:\w+ )?sconosciuto|indirizzo (?:\w+ )?(?:sconosciuto|inesistente)",
       unless=_NOT_THE_RECIPIENT),
    # the account's state as a family: "[Inactive account]", "inactive user", "account
    # expired", "User status is locked", "User account not activated", "is now disabled",
    # "This address no longer accepts mail"
    _r("recipient_unknown",
       r"(?:deactivated|inactive|inactivated|expired|locked|disabled|suspended) "
       r"(?:mailbox|account|address|user)|"
       r"(?:user|account|mailbox)(?: status| account)? (?:is |has been )?(?:now )?"
       r"(?:inactive|inactivated|expired|locked|not activated)\b|"
       r"is now (?:disabled|deactivated|inactive)|"
       r"no longer (?:accepts? (?:e-?)?mail|exists?|in use|active)|"
       r"(?:mail|e-?mail) receiving (?:is )?disabled",
       unless=_NOT_THE_RECIPIENT,
       quick=("activ", "expired", "locked", "disabled", "suspended", "no longer")),
    # the address between the noun and the verdict ("User (x) unknown."), the recipient not
    # listed or not a member, no valid recipient, a failed recipient verification
    _r("recipient_unknown",
       r"(?:user|recipient|mailbox|addressee) (?:\(addr\) |<addr> )unknown|"
       r"(?:user|recipient|address|mailbox)(?: \S+){0,2} (?:is )?not (?:a member of|listed in|"
       r"registered|in (?:my|the|our) \S+ list)|"
       r"(?:recipients?|users?|mailbox(?:es)?|address(?:es)?) (?:are|is) (?:all )?(?:invalid|"
       r"not valid)|no valid recipients?|recipient verif\w* (?:\w+ ){0,3}?(?:fail|problem|error)",
       unless=_NOT_THE_RECIPIENT,
       quick=("unknown", "member", "listed", "registered", " list", "valid", "verif")),
    # the bare address between the noun and its verdict ("mailbox x@y unknown", "user 'x' not
    # found"), and a verification that says the account or domain may not exist (a reply wrapped
    # over lines carries its code in the middle: "may not 550 exist")
    _r("recipient_unknown",
       r"(?:user|recipient|mailbox|addressee|account) (?:\"addr\"|'addr'|addr)\.?:? (?:is )?"
       r"(?:unknown|not found|does ?n[o']?t exist|invalid|not valid|disabled|inactive)\b|"
       r"(?:account|domain|address|mailbox|user)(?: or (?:the )?\w+)? may not (?:[45]\d\d[- ])?"
       r"exist",
       unless=_NOT_THE_RECIPIENT,
       quick=("addr", "may not")),
    # an account that may not receive or is not local here: "542 This account isn't allowed to
    # receive email", "503 Rcptto account isn't a local account"
    _r("recipient_unknown",
       r"(?:isn't|is not|not) (?:allowed|permitted) to receive\b|"
       r"(?:rcpt ?to|recipient)(?: \S+){0,2} (?:isn't|is not|not) (?:a )?local\b",
       unless=_NOT_THE_RECIPIENT, quick=("receive", "local")),
    _r("recipient_unknown", r"Recipient address rejected\.?\s*(?:\(in reply|$)", scope="reply"),
    _r("recipient_unknown", r"\b(?:recipient|rcpt|address)(?: address)? rejected\b", scope="reply",
       weak=True),
    _r("recipient_unknown", r"^bad address syntax", scope="local"),
    # -- refused: the connection could not be opened (Postfix's own words only) -----------------
    _r("refused", r"Connection refused|No route to host|Network is unreachable|"
                  r"Host is unreachable|Cannot assign requested address|Address not available|"
                  r"Network is down|"
                  r"connect to \S+: (?:No such file or directory|"
                  r"Permission denied|Address family not supported)", scope="local"),
    # -- timeout --------------------------------------------------------------------------------
    _r("timeout", r"timed out|time ?out exceeded|timeout (?:while|waiting|reached)|"
                  r"time limit exceeded|\btimeout\b.*(?:closing|expired)|read timeout|"
                  r"connection expired|"
                  # the remote's words: "421 Connection timeout", "rcpt handle timeout"
                  r"connection time ?out\b|session time ?out\b|handle time ?out\b|"
                  r"idle time ?out\b"),
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
                 r"service refus|" + _MANY_INVALID + r"|"
                 # our IP filtered ("Your IP(…) is filtered …, you must register your IP")
                 r"\bip\b.{0,40}\bis filtered|register your ip\b|"
                 r"unresolvable (?:\S+ )?(?:from|sender) domain|administrative prohibition|"
                 r"\bmail rejected\b|mail rejete|invalid DNS\b|sender verif\w* fail|spoof|"
                 r"abusive|excessive (?:rejected|invalid|authentication)|"
                 r"domain of sender address|unauthori[sz]ed|valid sender|sender domain|white ?list|"
                 r"allow ?list",
       unless=_NOT_POLICY),
    # refusals of us or of our message without a block word: relaying, our sender ("Sender
    # email is not in my domain", "sender is rejected", "MAIL FROM mismatches client IP"), the
    # content ("Message refused", "Content reject", "Invalid data in message", "MIME/REJECT",
    # "User refused to receive this mail")
    _r("policy", r"unable to relay|not a gateway|no permit\b|not permitted\b|"
                 r"sender(?: \S+){0,2} (?:is )?(?:rejected|refused|not in\b|not allowed|"
                 r"unvalidated|invalid|not valid|unverified)|"
                 r"mismatch|invalid ip\b|(?:no valid|missing|invalid) (?:\S+ ){0,2}dns record|"
                 r"(?:message|mail|e-?mail|content|data)(?: \S+)? (?:is |was |has been )?"
                 r"(?:refused|reject(?:ed)?)\b|mime[ /](?:error|reject)|"
                 r"invalid (?:data|header|structure|mime)|refused to receive|"
                 r"does not accept (?:e-?mail|mail|messages)",
       unless=_NOT_POLICY,
       quick=("relay", "gateway", "permit", "sender", "mismatch", "invalid ip", "record",
              "refuse", "reject", "mime", "invalid", "accept")),
    # relaying refused in other words, which must beat the RCPT TO layer ("no longer relays",
    # "is not configured to relay", "isn't in my list of allowed rcpthosts"); a sender
    # verification or callout, even one that quotes "No Such User Here"; the remote's DNS check
    # of us ("Domain may not exist or DNS check failed"); an address or identity of ours that
    # does not match ("The from address does not match a verified Sender Identity")
    _r("policy", r"(?:no longer|not|n't|never|won't|will not|cannot|do not|does not)"
                 r"(?: \w+){0,2} (?:to )?relays?\b|"
                 r"relay(?:ing)? (?:is |are )?(?:not allowed|disabled|refused|closed)\b|rcpthosts|"
                 r"relaying (?:\S+ ){0,4}(?:is )?not (?:allowed|permitted)|"
                 + _CHECKS_OF_US + r"|"
                 r"(?:address|domain|sender|identity|IP|from)(?: \S+){0,3} (?:does not|doesn't|"
                 r"do not) match",
       quick=("relay", "rcpthosts", "sender", "dns", "match")),
    # our HELO, sender, domain or IP refused in short words, and blocks worded without a block
    # word: "550 invalid helo given", "555 helohost error", "501 HELO/EHLO requires domain
    # address", "552 mail from invalid", "501 \"MAIL FROM\" is non-local account", "554 sender is
    # unvalidated", "451 From:domain must resolve", "556 remote ip check error", "550 Sorry, no
    # access for this ip", "553 host denies the sender", "541 This account isn't allowed to send
    # email", "550 black ip", "Dictionary attack detected", "554 No relaying allowed", "553
    # Header Error", "552 too many same size mails" (a spam verdict, not throttling)
    # (every alternative starts with a letter, not a group: the regex engine then skips to the
    # letters that can start a match)
    _r("policy", r"invalid (?:helo|ehlo)\b|bad (?:helo|ehlo)\b|wrong (?:helo|ehlo)\b|"
                 r"helo ?host (?:error|invalid|rejected)|helo(?:/ehlo)? requires?\b|"
                 r"ehlo(?:/helo)? requires?\b|domain name required|"
                 r"mail(?: from|from)\b\"?(?: account)? (?:is )?(?:invalid|non-?local|a local|"
                 r"not (?:valid|local|allowed)|isn't|doesn't|does not|mailbox unavailable)|"
                 r"from\S*(?: \S+)? must resolve|sender\S*(?: \S+)? must resolve|"
                 r"ip check (?:error|fail)|domain check (?:error|fail)|host check (?:error|fail)|"
                 r"open ?relay check|no access (?:for|from) (?:this |that |your )?"
                 r"(?:ip|domain|user|sender|host|client|address)|"
                 r"denies (?:the |your )?(?:sender|relay|relaying|"
                 r"access|mail|you|connection)|n't (?:accepted|allowed|authorized|permitted)|"
                 r"not (?:allowed|permitted) to send|black (?:ip|mail|address|domain|sender|"
                 r"host)\b|dictionary attack|directory harvest|no relay(?:ing)? (?:allowed|"
                 r"permitted)|header (?:error|invalid)|" + _LOOKS_LIKE_SPAM,
       unless=_NOT_POLICY,
       quick=("helo", "ehlo", "domain name", "mail from", "mailfrom", "resolve",
              "check", "no access", "denies", "n't", "to send", "black", "dictionary",
              "harvest", "no relay", "header", "too many")),
    # a bare verdict on our message or on us, nothing else named: "550 rejected", "554 Rejected
    # (in reply to end of DATA command)", "550 Command Rejected"
    _r("policy", r"^[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3} )?(?:command )?(?:rejected|refused|"
                 r"denied)\.?"
                 r"(?: \(in reply to (?:end of data|data|mail from) command\))?$",
       scope="reply", quick=("reject", "refuse", "denied")),
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
                r"message (?:size exceeds|(?:body )?(?:is )?too (?:big|large|long))|"
                r"problem (?:attempting|processing|executing)|"
                r"message size (?:\w+ )?exceeded|"
                r"exceeds (?:the )?(?:fixed )?maximum message size|system (?:is )?overloaded|"
                r"resources? (?:temporarily )?(?:unavailable|exhausted)|syntax error|"
                r"server (?:is )?temporarily unavailable|(?:OFR|LPN)\d*_505\b|"
                r"temporary (?:server|system) error|mail server temporarily rejected|"
                r"temporarily unavailable|temporary failure|"
                r"temporary (?:\w+ )?DNS lookup fail|our database returned|"
                r"unable to correctly read|size limit\b|protocol (?:violation|error)|"
                # the remote's own failure, its disk, a busy mailbox ("Temporary system
                # failure. Please try again later", "Insufficient disk space; try again later",
                # "450 4.2.1 Mailbox is busy", "450 Fail, Box is busy")
                r"system failure|(?:insufficient|not enough|no) disk space|"
                r"(?:mail ?box|\bbox) (?:is )?busy",
       scope="reply"),
    # Postfix's own: the message needs SMTPUTF8 and the remote lacks it (not TLS, although it
    # is worded as "TLS is required, but was not offered"; left unnamed, the fallback said tls)
    _r("other", r"SMTPUTF8 is required", scope="local"),
)

#: A local delivery agent's own error (local(8), pipe(8), virtual(8): procmail, maildrop,
#: Dovecot's LDA, the alias database, .forward files): ``transport`` whatever words the agent's
#: output carries ("Connection refused", "authentication failure", "time limit"), except a full
#: mailbox or a loop, which keep their class.
_AGENT = re.compile(  # matched against the lower-cased text
    r"command output:|command died with status|command time limit exceeded|"
    r"can't create user output file|^temporary failure\b(?! of host ?name lookup)|"
    r"error reading forwarding file|"
    r"alias database (?:owner|unavailable)|cannot find alias database")
_AGENT_KEEPS = ("loop", "mailbox_full")

_STRONG: tuple[Rule, ...] = tuple(sorted((r for r in RULES if not r.weak),
                                         key=lambda r: _ORDER[r.cls]))
_WEAK: tuple[Rule, ...] = tuple(sorted((r for r in RULES if r.weak), key=lambda r: _ORDER[r.cls]))


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
def _host(m: re.Match[str]) -> str:
    """A host is a dotted name, or a name with a bracketed address, path or placeholder that
    holds a dot, colon or slash ("localhost[127.0.0.1]", "x[/run/lmtp]"); "Authentication
    failure[0]" is not one (held-back part 7 found it: its words were never read). Tested
    here rather than in the pattern: an alternation there cost ~1 us more per text."""
    name, _, rest = m.group(0).partition("[")
    return "HOST" if "." in name or any(c in rest for c in ".:/") else m.group(0)


_NORMALIZE: tuple[tuple[str, re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # (a quick test, the pattern, its replacement); every pattern starts only where a word does
    ("[", re.compile(r"(?<![^\s(<])[^\s\[\]()<>]+\[[^\]\s]*\](?::\d+)?"), _host),
    # the local part excludes "@": "<@@@…" unclosed was quadratic (1.3 s at 16,000 chars)
    ("@", re.compile(r"<[^<>\s@]*@[^<>\s]*>"), "<ADDR>"),
    ("@", re.compile(r"(?<![\w.+=-])[\w.+=-]+@[\w-]+(?:\.[\w-]+)*"), "ADDR"),
    ("gsmtp", re.compile(r"(?<!\S)\S+ - gsmtp\b"), "- gsmtp"),
    # long bracketed tokens: Microsoft's "[AM4PEPF00025F97.EURPRD83.prod.outlook.com …]",
    # Mimecast's "[dMDIcuXEPaWkLrAnT9uJTA.uk12]": 12+ characters that are one word, or whose
    # first word carries a digit or a dot. Short codes such as "[TSS04]" stay, and so do
    # bracketed words ("[Too many sessions opened]", "[Reverse DNS failure : Try again later]")
    ("[", re.compile(r"\[(?=[^\[\]]{12})(?:[^\[\]\s]+|[^\[\]\s]*[\d.][^\[\]]*)\]"), "[ID]"),
)


def normalize(text: str) -> str:
    """The text without its host names, addresses and per-message tokens."""
    for quick, pattern, repl in _NORMALIZE:
        if quick in text:
            text = pattern.sub(repl, text)
    return text


#: an address in angle brackets that normalize() replaces by "<ADDR>" whatever the rest of the
#: text is: no brackets in it (a host's bracketed part could start or end there) ...
_KEY_ADDR = re.compile(r"<[^<>\s@\[\]]*+@[^<>\s\[\]]*+>")
#: ... and not inside an open bracket of its word ("x[a.b<c@d>]" is a host, see _host)
_KEY_INSIDE = re.compile(r"\[[^\]\s]*<[^<>\s@\[\]]*+@")


def class_key(text: str) -> str:
    """A stand-in for a text (cut, see :func:`cut`) with its recipients' addresses in angle
    brackets replaced as normalize() replaces them: texts with equal keys normalise alike, so
    they classify alike. Cheap (one search, ~0.5 us), for memos of classes: greylisting and
    "unverified address" replies quote each recipient, so a queue's distinct texts are often
    five times its distinct keys. Only what is sure to normalise alike is replaced (proved on
    the corpus and by hypothesis in tests/unit/test_reasons_key.py)."""
    text = cut(text)
    if "@" not in text:
        return text
    key = _KEY_ADDR.sub("<ADDR>", text)
    if key is not text and (_KEY_INSIDE.search(text) or len(key) > CUT_AT):
        return text         # (a key no longer than a cut text: memos of keys stay bounded)
    return key


def split(text: str) -> tuple[str, str]:
    """(Postfix's own words, the remote's reply) of one delay text; the reply may be empty.
    A text that starts with a reply code or an enhanced status code is a reply quoted without
    Postfix's ``host X said:`` ("553 invalid", "4.7.1 Try again later"): Postfix's own words
    never start with one."""
    text = _strip(text)
    m = _REPLY.search(text)
    if not m:
        return ("", text) if _SMTP_CODE.match(text) or _DSN.match(text) else (text, "")
    return text[:m.start()], text[m.end():]


#: A text longer than CUT_AT characters is classified, kept and shown by its head and tail
#: (:func:`cut`): a remote's multi-line reply can reach the 64 KiB line bound, the classifier's
#: cost grows with the length (~0.9 ms for 4 KB against ~0.14 ms for 580 characters), and every
#: memo keyed by a text (here, queue.QueueSnapshot) would keep it whole. The cause, the reply code
#: and the enhanced code come first, Postfix's "(in reply to … command)" note last. The longest
#: text of the corpus (tests/fixtures/reasons/) has 581 characters, so none is cut; cut at a head
#: of 300 and a tail of 100 characters, every corpus text still classifies as it does whole
#: (200 + 100: 3 of 1,816 change; test_reason_caps holds 300 + 100), which is the margin.
HEAD_CHARS = 512
TAIL_CHARS = 128
#: what stands for the cut-out middle, so a kept example says it was shortened
CUT_MARK = " [...] "
CUT_AT = HEAD_CHARS + len(CUT_MARK) + TAIL_CHARS


def cut(text: str) -> str:
    """The text itself, or when longer than CUT_AT its head and tail around CUT_MARK."""
    if len(text) <= CUT_AT:
        return text
    return f"{text[:HEAD_CHARS]}{CUT_MARK}{text[-TAIL_CHARS:]}"


def classify(text: str) -> str:
    """The class of one delay or bounce text (a long one by its :func:`cut`)."""
    text = text or ""
    return _classify_text(text if len(text) <= CUT_AT else cut(text))


@lru_cache(maxsize=4096)
def _classify_text(text: str) -> str:
    """classify() of a text no longer than CUT_AT (cached: queues repeat a few texts many
    times, and texts that differ only in host names or addresses share an entry)."""
    return _classify(normalize(text))


#: the command a reply answered, as Postfix notes it: "(in reply to RCPT TO command)"
_COMMAND = re.compile(r"\(in reply to ([a-z ]+?) command\)")
#: a reply that names the RCPT command in its own words
_NAMES_RCPT = re.compile(r"\brcpt\b")


#: what :func:`context` returns
Context = tuple[str, str, "str | None", "str | None", "tuple[int, int, int] | None"]


def context(text: str) -> Context:
    """(Postfix's own words, the reply, the command it answered, the basic reply code, the
    enhanced status code as three ints) of one lower-cased, normalised text. The command is
    ``"greeting"`` for ``refused to talk to me``, ``"rcpt to"`` when a reply without Postfix's
    note names RCPT itself; an enhanced code is looked for in the reply
    (in Postfix's own words when there is no reply)."""
    local, reply = split(text)
    command = None
    if reply:
        m = _COMMAND.search(reply)
        if m:
            command = m.group(1)
        elif "refused to talk to me:" in text:
            command = "greeting"
        elif "rcpt" in reply and _NAMES_RCPT.search(reply):
            # a reply quoted without Postfix's note that names the command itself: "550
            # Command RCPT User <x> not OK", "552 RCPT TO:<x> …", "User unknown in RCPT TO"
            command = "rcpt to"
    basic, d = _codes(local, reply)
    dsn = (int(d.group(1)), int(d.group(2)), int(d.group(3))) if d else None
    return local, reply, command, basic, dsn


def _codes(local: str, reply: str) -> tuple[str | None, re.Match[str] | None]:
    """(the basic reply code at the start of the reply, the first enhanced status code of the
    reply, or of Postfix's own words when there is no reply) of a text :func:`split` apart."""
    m = _SMTP_CODE.match(reply.lstrip())
    return (m.group(0)[:3] if m else None), _first_dsn(reply or local)


#: RFC 3463 / RFC 5248 details of subject 7 (security or policy status) that name a cause
_X7 = {3: "auth", 8: "auth", 9: "auth", 11: "auth", 12: "auth",  # SASL (RFC 4954)
       57: "auth", 139: "auth",                                  # Microsoft's client auth codes
       4: "tls", 5: "tls", 10: "tls", 30: "tls",                 # security features, REQUIRETLS
       28: "rate_limited"}                                       # mail flood detected


def _by_code(dsn: tuple[int, int, int], command: str | None) -> str | None:
    """What an enhanced status code says by its subject and detail (RFC 3463: X.1 addressing,
    X.2 mailbox, X.3 mail system, X.4 network and routing, X.5 protocol, X.7 security and
    policy), read with the command the reply answered; ``None`` when it names nothing."""
    status, subject, detail = dsn
    if subject == 1:    # addressing: X.1.7/X.1.8 the sender's address, else the recipient's
        if detail in (7, 8):
            return "policy"
        if detail in (1, 2, 3, 6, 10) or command == "rcpt to":
            return "recipient_unknown"
        return None
    if subject == 2:    # the mailbox: X.2.2 full, 5.2.1 disabled, X.2.3 message too long
        return ("mailbox_full" if detail == 2 else
                "recipient_unknown" if detail == 1 and status == 5 else
                "other" if detail in (3, 4) else None)
    if subject == 3:    # the remote's own mail system
        return "other"
    if subject == 4:    # network and routing: X.4.6/X.4.14 loops, X.4.2 bad connection
        return "loop" if detail in (6, 14) else "timeout" if detail == 2 else None
    if subject == 5:    # protocol
        return "other"
    if subject == 7:    # security and policy: a named cause, else a 5.7.x / 4.7.1 refusal
        return _X7.get(detail) or ("policy" if status == 5 or detail == 1 else None)
    return None


def _by_command(basic: str, command: str | None) -> str | None:
    """What a 5xx reply says by the command it answered alone (RFC 5321): refused at RCPT TO,
    the recipient; at MAIL FROM, HELO/EHLO or the greeting, us; 552 is storage allocation; at
    the end of DATA, our message ("554 Transaction failed: Address contains illegal
    characters"), unless it is a 50x protocol error. (A 553 that answers nothing named is not
    read as RFC 5321's "mailbox name not allowed": servers use it for our sender and relaying
    as often, "553 host denies the sender".)"""
    if basic[0] != "5":
        return None
    if basic == "503":
        return "other"      # bad sequence of commands: "503 Error: need MAIL command"
    if basic.startswith("50"):
        return None         # a syntax error names nothing: "501 Syntax: MAIL FROM: <address>"
    if command == "rcpt to":
        return "recipient_unknown"
    if command in ("mail from", "helo", "ehlo", "greeting"):
        return "policy"
    if basic == "552":
        return "mailbox_full"
    if command in ("end of data", "data"):
        return "policy"
    return None


@lru_cache(maxsize=4096)
def _classify(text: str) -> str:
    ctx = context(text.lower())
    cls, weak = _layers(ctx)
    if cls is not None and not weak:
        return cls
    # no layer named a class, or only a weak one (a generic phrase, a code): the statistical
    # fallback (reason_fallback.py, its model loaded on first use), which answers "other" when
    # it is not sure either, and overrules a weak decision only when it is nearly certain
    from . import reason_fallback
    cls = reason_fallback.predict(ctx) if cls is None else reason_fallback.overrule(ctx, cls)
    # (a reply to MAIL FROM is about our sender, whatever the model says)
    return "policy" if cls == "recipient_unknown" and ctx[2] == "mail from" else cls


def rule_class(text: str) -> str | None:
    """The class the rule layers name for a text, or ``None`` when none does (the texts
    :func:`classify` hands to the fallback); for the fallback's training and evaluation."""
    text = text or ""
    return _layers(context(normalize(cut(text)).lower()))[0]


def _layers(ctx: Context) -> tuple[str | None, bool]:
    """Layers 1 to 4 of the module's docstring: (their class, whether only layer 3 or 4, a
    generic phrase or a code, named it); ``None`` when none names a class (an ``other`` that a
    layer decides, such as X.3.x, is ``"other"``)."""
    local, reply, command, basic, dsn = ctx
    whole = f"{local} {reply}" if reply else local
    agent = not reply and _AGENT.search(local) is not None
    cls = _by_rules(local, reply, whole, agent, weak=False)
    if agent:
        return cls or "transport", False
    strong = cls is not None
    if not strong:
        # the enhanced code and the generic phrases; the contract order breaks ties
        weak = _by_rules(local, reply, whole, False, weak=True)
        coded = _by_code(dsn, command) if dsn else None
        cls = min((c for c in (weak, coded) if c), key=_ORDER.__getitem__, default=None)
    if cls is None and basic:
        cls = _by_command(basic, command)
    if cls == "recipient_unknown" and command == "mail from":
        # a refused MAIL FROM is about our sender: "551 invalid address" there is policy
        cls = "policy"
    return cls, not strong


def _by_rules(local: str, reply: str, whole: str, agent: bool, weak: bool) -> str | None:
    """The first class (contract order) whose strong (or weak) rows match."""
    for rule in _STRONG if not weak else _WEAK:
        if agent and rule.cls not in _AGENT_KEEPS:
            continue
        where = whole if rule.scope == "any" else local if rule.scope == "local" else reply
        if rule.quick and not any(q in where for q in rule.quick):
            continue
        if where and rule.pattern.search(where) and not (rule.unless and
                                                         rule.unless.search(whole)):
            return rule.cls
    return None


def codes(text: str) -> tuple[str | None, str | None]:
    """(the remote's SMTP reply code, the first enhanced status code) of a text, if any."""
    basic, dsn = _codes(*split(text))
    return basic, dsn.group(0) if dsn else None


#: Postfix's own permanent failures (their texts carry no code): bounced, never retried.
_PERMANENT_LOCAL = re.compile(
    r"loops back to myself|^unknown user:|type=\w+: Host not found$|\(nullMX\)|"
    r"mail forwarding loop|error writing message: File too large", re.I)


def is_permanent(text: str) -> bool:
    """A 5xx reply or a 5.x.x status is permanent (the recipient will bounce); else temporary.

    The remote's reply code decides first (``450 4.1.1 … unverified address: … said: 550 5.1.1``
    is temporary), then the first enhanced status code, then a few of Postfix's own permanent
    texts that carry no code (``mail for … loops back to myself``, ``unknown user: "x"``).
    A long text is judged by its :func:`cut`, as classify() does.
    """
    return _is_permanent(cut(text))


@lru_cache(maxsize=4096)
def _is_permanent(text: str) -> bool:
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
