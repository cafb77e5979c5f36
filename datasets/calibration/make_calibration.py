"""Build the demo calibration sets (groundedness, tone) reproducibly from the demo suite's cases.

Labels come from how each item is built, never from a judge: PASS items are the reference answers
and the demo assistant's own (help-center-quoting) replies, optionally wrapped in neutral or
friendly phrasing; FAIL items are hand-written flawed variants of them (a changed number, an
invented policy, a guess; condescension, blame, shouting). Each item carries the critique a
reviewer would write. Run: .venv/bin/python datasets/calibration/make_calibration.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE.parent / "demo" / "cases.jsonl"
N_ITEMS, N_FAIL = 160, 64   # 40% FAIL: the FAIL class is what the judge must catch

_NUM = re.compile(r"\$?\d[\d,]*(?:\.\d+)?")

# Invented claims: what a model that "fills in" plausible policy says. The help center states none
# of them. Some carry a number or a promise word a careful reader spots at once; others are subtle.
FABRICATIONS = [
    ("Every plan also includes 5 TB of bonus storage at no extra cost.", "invents 5 TB of bonus storage"),
    ("Refunds are guaranteed at any time, no questions asked.", "promises unconditional refunds at any time"),
    ("Phone support is available around the clock on every plan.", "claims round-the-clock phone support on every plan"),
    ("Students get 75% off every plan for life.", "invents a lifetime 75% student discount"),
    ("You can also pay with Bitcoin or by cheque.", "invents Bitcoin and cheque payments"),
    ("Deleted files stay recoverable for 365 days.", "states a 365-day recovery window"),
    ("Nimbus is guaranteed to never lose a file.", "promises that files can never be lost"),
    ("Annual plans come with a 90 day money-back window.", "states a 90 day refund window"),
    ("Shared links can be protected with a fingerprint scan.", "invents fingerprint-protected links"),
    ("The mobile app can also back up your text messages.", "invents text-message backup"),
    ("Business admins can recover any user's password for them.", "invents admin password recovery"),
    ("There is a loyalty program that gives long-time customers free upgrades.", "invents a loyalty program"),
]

GUESSES = [
    "I'm not sure, but I think that is probably handled by your bank.",
    "I believe it might be around 12 days, but please double-check.",
    "Probably yes; most cloud services allow that.",
    "I think it depends on your region, maybe 3 to 5 business days.",
]

FRIENDLY_PREFIX = ["", "", "", "Happy to help! ", "Thanks for reaching out. ", "Sure. ", "Good question. "]
FRIENDLY_SUFFIX = ["", "", "", " Let me know if there is anything else I can do.", " I hope this helps!",
                   " You can read the help center article on this topic for more details."]

# Condescension and blame a reviewer marks FAIL. The first group uses words a rubric check catches;
# the second is as rude without them.
RUDE_PREFIX = ["Obviously, ", "Ugh, fine. ", "Seriously? ", "This is a dumb question, but ",
               "As the help center clearly says (read it next time): ",
               "Not sure why this is so hard, but ", "Well, if you had bothered to look: "]
RUDE_SUFFIX = [" Figure out the rest yourself.", " Stop asking me the same thing.",
               " Hopefully that is simple enough for you.", " Try paying attention next time."]


def load_cases() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def assistant_reply(question: str) -> str:
    from evalplatform.demo import answer

    return answer([{"role": "user", "content": question}], {"temperature": 0, "max_tokens": 400})


def _kb_numbers() -> set[str]:
    from evalplatform.demo.knowledge import load

    return set(_NUM.findall(" ".join(a.body for a in load().articles)))


def change_a_number(text: str, rng: random.Random, kb: set[str]) -> tuple[str, str, str] | None:
    """Replace one number with a wrong one the help center never states: (new text, old, new)."""
    found = [m for m in _NUM.finditer(text) if not re.match(r"\d{4}-", text[m.start():m.start() + 5])]
    if not found:
        return None
    m = rng.choice(found)
    old = m.group(0)
    digits = old.replace("$", "").replace(",", "")
    value = float(digits)
    for factor in (2, 3, 1.5, 5):
        new_value = value * factor + (1 if value == 0 else 0)
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        new = f"{'$' if old.startswith('$') else ''}{new_value:,.{decimals}f}"
        if new not in kb and new.replace("$", "") not in kb:
            return text[:m.start()] + new + text[m.end():], old, new
    return None


def fill(n: int, make) -> list[tuple[str, str, str]]:
    """Call make() until n items with distinct outputs: a duplicate would count twice in the statistics."""
    out: dict[str, tuple[str, str, str]] = {}
    for _ in range(100 * n):
        item = make()
        if item is not None:
            out.setdefault(item[1], item)
        if len(out) == n:
            return list(out.values())
    raise RuntimeError(f"could not build {n} distinct items")


def groundedness(cases: list[dict], rng: random.Random) -> list[dict]:
    kb = _kb_numbers()
    answerable = [c for c in cases if c["category"] in ("grounding", "arithmetic", "dates", "refusal", "pii")]
    grounded = [c for c in cases if c["category"] in ("grounding", "arithmetic")]

    def a_pass():
        c = rng.choice(answerable)
        text, how = rng.choice([(c["expected"], "the reference answer"),
                                (assistant_reply(c["question"]), "the assistant's reply")])
        return (c["question"], rng.choice(FRIENDLY_PREFIX) + text,
                f"Every statement in {how} is supported by the help center or follows from it.")

    def a_fail():
        c = rng.choice(grounded)
        q, base = c["question"], c["expected"]
        kind = rng.random()
        if kind < 0.4:
            changed = change_a_number(base, rng, kb)
            if changed is None:
                return None
            text, old, new = changed
            return (q, text, f"States {new} where the help center gives {old}: the figure is unsupported.")
        if kind < 0.85:
            claim, what = rng.choice(FABRICATIONS)
            return (q, f"{base} {claim}", f"The answer {what}; the help center says nothing of the kind.")
        return (q, rng.choice(GUESSES), "Guesses instead of answering from the help center, which does cover this "
                                        "question.")

    return _assemble("groundedness", fill(N_ITEMS - N_FAIL, a_pass), fill(N_FAIL, a_fail), rng)


def tone(cases: list[dict], rng: random.Random) -> list[dict]:
    def a_pass():
        c = rng.choice(cases)
        base = c["expected"] if rng.random() < 0.5 else assistant_reply(c["question"])
        return (c["question"], rng.choice(FRIENDLY_PREFIX) + base + rng.choice(FRIENDLY_SUFFIX),
                "Polite and professional; no condescension, blame or shouting.")

    def a_fail():
        c = rng.choice(cases)
        q, base = c["question"], c["expected"]
        kind = rng.random()
        if kind < 0.45:
            p = rng.choice(RUDE_PREFIX)
            return (q, p + base[0].lower() + base[1:], f"Opens with {p.strip()!r}: condescending toward the customer.")
        if kind < 0.85:
            s = rng.choice(RUDE_SUFFIX)
            return (q, base + s, f"Ends with {s.strip()!r}, which blames or belittles the customer.")
        return (q, base.upper() + " READ THE HELP CENTER.",
                "Written in capitals and tells the customer off: reads as shouting.")

    return _assemble("tone", fill(N_ITEMS - N_FAIL, a_pass), fill(N_FAIL, a_fail), rng)


def _assemble(criterion: str, passes: list, fails: list, rng: random.Random) -> list[dict]:
    chosen = [(*p, "PASS") for p in passes] + [(*f, "FAIL") for f in fails]
    rng.shuffle(chosen)
    return [{"id": f"{criterion}-{i + 1:03d}", "criterion": criterion, "input": q, "output": o, "label": label,
             "critique": critique} for i, (q, o, critique, label) in enumerate(chosen)]


def main() -> None:
    cases = load_cases()
    for name, build in (("groundedness", groundedness), ("tone", tone)):
        items = build(cases, random.Random(f"calibration-{name}-v1"))
        path = HERE / f"{name}.jsonl"
        path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
        n_fail = sum(i["label"] == "FAIL" for i in items)
        print(f"{path.name}: {len(items)} items, {n_fail} FAIL ({n_fail / len(items):.0%})")


if __name__ == "__main__":
    main()
