"""Every row's `explanation.summary`, for whole chunks, worded exactly as explain's `_summary`.

A summary is a few parts joined by spaces: a lead, the messages of rules that shaped the answer,
the rules set aside, the classifier's view, a referral. Each part is formatted once per distinct
input (with explain's own sentences and template filler) and the parts are joined in arrow, so
the Python work grows with the variety of answers, not the row count.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.core.combine import DIRECTIONS, Decisions
from service.core.explain import (
    LEADS,
    NO_MODEL,
    SET_ASIDE,
    UNTIL_THEN,
    Reader,
    TemplateValues,
    classifier_says,
    span,
)
from service.core.fields import BANDS
from service.core.rules import Rule, template_names


def distinct(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row index per distinct combination of keys, and each row's combination number.

    Floats compare by their bits, so rows grouped together format identically.
    """
    n = len(keys[0])
    combined, space = np.zeros(n, dtype=np.int64), 1
    for key in keys:  # fold the keys into one integer, re-numbering before it could overflow
        code, size = _codes(key)
        if space * size >= 1 << 62:
            values, inverse = np.unique(combined, return_inverse=True)
            combined, space = inverse.reshape(-1), len(values)
        combined, space = combined * size + code, space * size
    if space > 4 * n + 1024:
        _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    seen = np.zeros(space, dtype=bool)  # a small key space: number the keys without sorting
    seen[combined] = True
    number = np.cumsum(seen) - 1
    inverse = number[combined]
    first = np.zeros(np.count_nonzero(seen), dtype=np.int64)
    first[inverse] = np.arange(n)  # any row of a group stands for it
    return first, inverse


def _codes(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's number among `key`'s values, and how many numbers there may be."""
    if key.dtype.kind in "biu" and len(key):
        lo, hi = int(key.min()), int(key.max())
        if hi - lo < 1 << 16:
            return key.astype(np.int64) - lo, hi - lo + 1
    if key.dtype.kind == "f":
        key = np.ascontiguousarray(key, dtype=np.float64).view(np.int64)
    values, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1), len(values)


def by_id(d: Decisions) -> tuple[list[Rule], np.ndarray, np.ndarray]:
    """The rules in id order, as responses list them, with their fired and overruled flags
    rule by rule (rules x rows)."""
    order = d.book.id_order
    return [d.book.rules[j] for j in order], d.fired.T[order], d.overruled.T[order]


def summaries(d: Decisions) -> pa.Array:
    """Every row's summary. A row's parts go into slots, joined in order.

    After a hard referral: its referral messages, then the advice to keep the current drop.
    Otherwise: the lead (slot 0), up to three messages of rules that shaped the answer (1-3),
    the rules set aside (4), the classifier's view (5), a referral's message (6) and the advice
    that sends the person to a clinician (7).
    """
    n = len(d.band)
    rules, fired, overruled = by_id(d)
    active = fired & ~overruled
    stop = active[[bool(r.referral) and not r.provisional for r in rules]].any(axis=0)
    go = ~stop
    shaped = d.shaped.T[d.book.id_order] & active & go
    tell_referral = go & (d.urgency > 0)
    parts = _Parts()
    slots = np.zeros((max(8, sum(bool(r.referral) for r in rules) + 1), n), dtype=np.int64)
    said = np.zeros(n, dtype=np.int64)  # messages in slots so far: why's, or a stop's reasons
    aside = np.zeros(n, dtype=np.int64)  # the rules set aside so far, by code into `asides`
    asides = [""]
    nothing = np.zeros(n, dtype=bool)
    for j, rule in enumerate(rules):
        why = shaped[j] & (said < 3)
        reasons = urgent = nothing
        if rule.referral:
            reasons = active[j] & stop
            urgent, tell_referral = active[j] & tell_referral, tell_referral & ~active[j]
        set_aside = fired[j] & overruled[j] & go
        rows = np.flatnonzero(why | reasons | urgent | set_aside)
        if not rows.size:
            continue
        message = np.zeros(n, dtype=np.int64)
        message[rows] = _messages(d, rule, rows, parts)
        at = np.flatnonzero(why)
        slots[said[at] + 1, at] = message[at]
        at = np.flatnonzero(reasons)
        slots[said[at], at] = message[at]
        said += why | reasons
        at = np.flatnonzero(urgent)
        slots[6, at] = message[at]
        at = np.flatnonzero(set_aside)
        if at.size:  # extend each row's list of names by this rule's (its message's head)
            first, which = distinct(aside[at], message[at])
            for f in first:
                name = parts.texts[message[at[f]]].split(":")[0]
                asides.append(f"{asides[aside[at[f]]]}; {name}" if aside[at[f]] else name)
            aside[at] = len(asides) - len(first) + which
    stops = np.flatnonzero(stop)
    if stops.size:
        current = d.ctx["current"][stops]
        first, which = distinct(current)
        tails = [UNTIL_THEN.format(now=float(current[f])) for f in first]
        slots[said[stops], stops] = parts.add(tails, which)
    rest = np.flatnonzero(go)
    if rest.size:
        slots[0, rest] = _leads(d, rest, parts)
        ruled = active[[bool(r.band) for r in rules]].any(axis=0)  # a rule set the band
        slots[5, rest] = _classifier(d, rest, ruled[rest], parts)
        at = np.flatnonzero(aside)
        slots[4, at] = parts.add([SET_ASIDE.format(names=a) for a in asides[1:]], aside[at] - 1)
        slots[7, rest] = _clinician(d, rules, parts)[rest]
    texts = pa.array(parts.texts, type=pa.string())
    columns = [pc.take(texts, pa.array(codes, mask=codes == 0)) for codes in slots]
    return pc.binary_join_element_wise(*columns, " ", null_handling="skip")


def _clinician(d: Decisions, rules: list[Rule], parts: "_Parts") -> np.ndarray:
    """Each row's advice texts that send it to a clinician, in id order, as one part (a hard
    referral has silenced all advice already)."""
    marked = [r for r in rules if r.clinician]
    given = d.advice.T[[d.book.index[r.id] for r in marked]]  # marked rules x rows
    codes = np.zeros(len(d.band), dtype=np.int64)
    at = np.flatnonzero(given.any(axis=0))
    if at.size:
        first, which = distinct(*given[:, at])
        texts = [" ".join(r.advice or "" for r, hit in zip(marked, given[:, at[f]], strict=True)
                          if hit) for f in first]  # fmt: skip
        codes[at] = parts.add(texts, which)
    return codes


class _Parts:
    """Sentence parts by code; code 0 is no part."""

    def __init__(self) -> None:
        self.texts = [""]

    def add(self, texts: list[str], which: np.ndarray) -> np.ndarray:
        """Codes for rows whose distinct part number is `which`."""
        base = len(self.texts)
        self.texts += texts
        return which + base


def _messages(d: Decisions, rule: Rule, rows: np.ndarray, parts: _Parts) -> np.ndarray:
    """Codes of the rule's message for `rows`, formatted once per distinct set of inputs."""
    values = _inputs(d, rule, rows)
    if values:
        first, which = distinct(*values)
    else:
        first, which = np.zeros(1, dtype=np.int64), np.zeros(len(rows), dtype=np.int64)
    reader = Reader(d)
    texts = [rule.message.format_map(TemplateValues(reader, int(rows[f]), rule)) for f in first]
    return parts.add(texts, which)


def _inputs(d: Decisions, rule: Rule, rows: np.ndarray) -> list[np.ndarray]:
    """Every value a rule's message reads, for the given rows."""
    names = template_names(rule.message)
    values: list[np.ndarray] = []
    if "reasons" in names:
        for reason, mask in zip(rule.reasons, d.reasons[rule.id], strict=True):
            names |= template_names(reason.text)
            values.append(np.asarray(mask)[rows])
    for name in sorted(names - {"reasons"}):
        source = {"floor_value": d.floors, "ceiling_value": d.ceilings}.get(name)
        values.append((source[rule.id] if source is not None else d.ctx[name])[rows])
    return values


def _leads(d: Decisions, rows: np.ndarray, parts: _Parts) -> np.ndarray:
    current, band = d.ctx["current"][rows], d.band[rows]
    lo, hi, direction = d.range_min[rows], d.range_max[rows], d.direction[rows]
    first, which = distinct(current, band, lo, hi, direction)
    texts = [
        LEADS[DIRECTIONS[direction[f]]].format(
            span=span(int(lo[f]), int(hi[f])), band=BANDS[band[f]], now=float(current[f])
        )
        for f in first
    ]
    return parts.add(texts, which)


def _classifier(d: Decisions, rows: np.ndarray, ruled: np.ndarray, parts: _Parts) -> np.ndarray:
    if d.probs is None:
        return parts.add([NO_MODEL], np.zeros(len(rows), dtype=np.int64))
    top, band = d.model_band[rows], d.band[rows]
    p = d.probs[rows, top]
    # f"{p:.0%}" formats p * 100 rounded half to even, which is what rint does to the same double
    first, which = distinct(top, band, np.rint(p * 100), ruled)
    texts = [
        classifier_says(BANDS[top[f]], BANDS[band[f]], float(p[f]), bool(ruled[f])) for f in first
    ]
    return parts.add(texts, which)
