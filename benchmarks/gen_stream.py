"""A synthetic ``postqueue -j`` stream: N lines shaped like Postfix 3.7's (member order, types,
``MAILER-DAEMON`` bounces, active recipients without ``delay_reason``), with realistic delay
reasons and many destination domains.

Shape (deterministic, seed 7):
- queues: 86% deferred, 8% active, 3% incoming, 2% hold, 1% maildrop;
- recipients: 88% one, 9% two to four, 3% five to twenty;
- domains: 12 big providers take ~45% of recipients, the rest spread over 20,000 domains with a
  long tail; each domain has its own MX name and IP, so reason texts differ per domain
  (≈ 25k distinct texts) and ~6% of texts carry the recipient's address (greylisting, unverified
  address), as real ones do — most texts are therefore seen many times, some once;
- reasons per domain: connection refused / timed out, lost connection, greylisted, DNS, TLS,
  rate limited (Gmail 4.7.28, Microsoft 4.7.500), mailbox full, SASL, "delivery temporarily
  suspended: …" repeats, loops;
- arrival times spread over the last five days, sizes 300 B – 2 MB (log-uniform).

Usage: python benchmarks/gen_stream.py OUT [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time

BIG = ("gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "gmx.de",
       "web.de", "orange.fr", "aol.com", "mail.ru", "yandex.ru", "comcast.net")

REASONS = (
    # (weight, template, temporary class it should land in — for the reader, not used)
    (22, "connect to {mx}[{ip}]:25: Connection refused"),
    (14, "connect to {mx}[{ip}]:25: Connection timed out"),
    (10, "delivery temporarily suspended: connect to {mx}[{ip}]:25: Connection timed out"),
    (6, "conversation with {mx}[{ip}] timed out while receiving the initial server greeting"),
    (6, "lost connection with {mx}[{ip}] while receiving the initial server greeting"),
    (5, "host {mx}[{ip}] said: 450 4.2.0 <{addr}>: Recipient address rejected: Greylisted, "
        "see http://postgrey.example/{domain}.html (in reply to RCPT TO command)"),
    (6, "Host or domain name not found. Name service error for name={domain} type=MX: "
        "Host not found, try again"),
    (3, "TLS is required, but was not offered by host {mx}[{ip}]"),
    (6, "host {mx}[{ip}] said: 421-4.7.28 [203.0.113.9      15] Our system has detected an "
        "unusual rate of unsolicited mail originating from your IP address. To protect our "
        "users from spam, mail sent from your IP address has been temporarily rate limited. "
        "(in reply to end of DATA command)"),
    (4, "host {mx}[{ip}] said: 451 4.7.500 Server busy. Please try again later from "
        "[203.0.113.9]. (AS761) (in reply to RCPT TO command)"),
    (4, "host {mx}[{ip}] said: 452 4.2.2 The email account that you tried to reach is over "
        "quota. (in reply to RCPT TO command)"),
    (2, "host {mx}[{ip}] said: 450 4.1.1 <{addr}>: Recipient address rejected: unverified "
        "address: host {mx}[{ip}] said: 550 5.1.1 User unknown (in reply to RCPT TO command)"),
    (1, "SASL authentication failed; server {mx}[{ip}] said: 535 5.7.8 Error: authentication "
        "failed: authentication failure"),
    (1, "mail for {domain} loops back to myself"),
)


def build_domains(rng: random.Random, n: int) -> list[str]:
    tails = ("example", "example.com", "example.net", "example.org", "test", "invalid")
    return [f"{rng.choice(('mx', 'corp', 'shop', 'mail', 'news', 'co'))}{i}."
            f"{rng.choice(tails)}" for i in range(n)]


def generate(out, lines: int, seed: int = 7, domains: int = 20000, now: float | None = None,
             address_texts: bool = True) -> dict[str, int]:
    rng = random.Random(seed)
    now = int(now if now is not None else time.time())
    tail = build_domains(rng, domains)
    kept = [(w, t) for w, t in REASONS if address_texts or "{addr}" not in t]
    weights = [w for w, _ in kept]
    templates = [t for _, t in kept]
    # a domain's MX, IP and reason are fixed: real queues repeat them
    dom_info: dict[str, tuple[str, str, str]] = {}

    def info(domain: str) -> tuple[str, str, str]:
        got = dom_info.get(domain)
        if got is None:
            h = rng.getrandbits(24)
            got = (f"mx{h % 3 + 1}.{domain}", f"198.{h >> 16 & 255}.{h >> 8 & 255}.{h & 255}",
                   rng.choices(templates, weights)[0])
            dom_info[domain] = got
        return got

    def pick_domain() -> str:
        if rng.random() < 0.45:
            return BIG[min(int(rng.expovariate(0.35)), len(BIG) - 1)]
        # a long tail: Pareto-like index over the tail domains
        i = int(len(tail) * (rng.random() ** 2.2))
        return tail[min(i, len(tail) - 1)]

    qnames = ("deferred", "active", "incoming", "hold", "maildrop")
    qweights = (86, 8, 3, 2, 1)
    dumps = json.dumps
    counts = {q: 0 for q in qnames}
    counts["recipients"] = 0
    hexd = "0123456789ABCDEF"
    buf = []
    for _ in range(lines):
        q = rng.choices(qnames, qweights)[0]
        counts[q] += 1
        r = rng.random()
        nr = 1 if r < 0.88 else (rng.randint(2, 4) if r < 0.97 else rng.randint(5, 20))
        counts["recipients"] += nr
        rcpts = []
        for _ in range(nr):
            domain = pick_domain()
            addr = f"user{rng.randrange(10**6)}@{domain}"
            rec = {"address": addr}
            if q == "deferred" or (q == "active" and rng.random() < 0.3) or q == "hold":
                mx, ip, tmpl = info(domain)
                rec["delay_reason"] = tmpl.format(mx=mx, ip=ip, addr=addr, domain=domain)
            rcpts.append(rec)
        sender = "MAILER-DAEMON" if rng.random() < 0.05 else f"news{rng.randrange(50)}@src.example"
        obj = {
            "queue_name": q,
            "queue_id": "".join(rng.choice(hexd) for _ in range(11)),
            "arrival_time": now - int(rng.random() ** 1.5 * 5 * 86400),
            "message_size": int(math.exp(rng.uniform(math.log(300), math.log(2_000_000)))),
            "forced_expire": rng.random() < 0.001,
            "sender": sender,
            "recipients": rcpts,
        }
        buf.append(dumps(obj))
        if len(buf) >= 10000:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        out.write("\n".join(buf) + "\n")
    counts["domains"] = len(dom_info)
    return counts


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--domains", type=int, default=20000)
    p.add_argument("--no-address-texts", dest="address_texts", action="store_false")
    args = p.parse_args(argv)
    with open(args.out, "w", encoding="utf-8") as f:
        counts = generate(f, args.lines, domains=args.domains, address_texts=args.address_texts)
    print(json.dumps(counts), file=sys.stderr)


if __name__ == "__main__":
    main()
