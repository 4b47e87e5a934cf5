"""The summary a shop assistant reads out: at most three sentences, written once for every door.

(1) What to do, with the numbers. (2) The main reason in plain words: a referral's own reason;
else the rule that forced the change, or set the answer (content-keep, a change too small to
make), or otherwise shaped it most; else that the answer is the model's best estimate (saying
when it learned from a simulation). (3) The advice to see a clinician, or what would firm up a
low-confidence answer. It never names a rule or the classifier; those details are in the
answer's `rules` and `advice`.

`slots` decides each row's sentences for any number of rows: the API, `heeldrop recommend` and
batch scoring join the same ones.
"""

from collections.abc import Callable

import numpy as np

from service.core.combine import DIRECTIONS, URGENCY, Decisions
from service.core.features import BAND_HI, BAND_LO
from service.core.fields import BANDS
from service.core.rules import Rule
from service.core.texts import TemplateValues, Texts

LEADS = {
    "keep": "Keep your {now:g} mm shoes: {span} is right for you.",
    "keep_insert": "Keep your shoes and heel insert at {now:g} mm: {span} is right for you.",
    "lower_gradually": "Lower gradually from {start} to {span}, in steps of up to 4 mm, "
    "{weeks} weeks each.",
    "lower_once": "Lower from {start} to {span} in one step.",
    "raise": "Raise your heel drop from {start} to {span}: {means}.",
    # said only to someone known to have worn a higher drop before
    "step_back_up": "Step back up from {start} to {span}: {means}.",
}
START = {False: "{now:g} mm", True: "{now:g} mm with your insert"}
# How to raise, by (whether the person wears a heel insert, whether an insert can make it).
MEANS = {
    (False, True): "other shoes or a heel insert",
    (False, False): "other shoes",
    (True, True): "higher shoes or a thicker insert",
    (True, False): "higher shoes",
}
# A heel insert is offered for a raise up to the height of the lifts trialled for Achilles pain
# (12 mm, HEALTHY 2021); a larger raise is a matter of other shoes.
INSERT_MAX_MM = 12
REFERRAL_KEEP = (
    "See a clinician {when} before changing your shoes; until then, keep your {now:g} mm."
)
REFERRAL_KEEP_INSERT = (
    "See a clinician {when} before changing your shoes; until then, keep your shoes and heel "
    "insert at {now:g} mm."
)
REFERRAL_BACK = "See a clinician {when}; until then, go back to your {back:g} mm shoes."
MODEL_ESTIMATE = "This is the model's best estimate for people like you."
MODEL_SIMULATED = (
    "This is the model's best estimate for people like you, learned so far from simulated people."
)
RULES_ONLY = "No model is loaded, so this is the smallest change the rules allow."
LOW_CONFIDENCE = "This answer is uncertain: try it and re-test after {weeks} weeks."
LOW_CONFIDENCE_BELOW = 0.35  # a confidence under this says what would firm the answer up
LEAD, REASON, CLOSING = range(3)
NONE = np.iinfo(np.int64).max  # a rank no rule has


def span(lo: int, hi: int) -> str:
    """A range in millimetres, with its band's name only when it lies inside that band."""
    text = f"{lo} mm" if lo == hi else f"{lo}-{hi} mm"
    inside = [b for k, b in enumerate(BANDS) if BAND_LO[k] <= lo and hi <= BAND_HI[k]]
    return f"{text} ({inside[0]})" if inside else text


def slots(d: Decisions, texts: Texts, simulated: bool = True) -> np.ndarray:
    """Each row's summary as codes into `texts`, sentence by sentence (3 x rows; 0 is none).

    `simulated`: the serving model learned from a simulation only (the summary says so).
    """
    n = len(d.band)
    out = np.zeros((3, n), dtype=np.int64)
    everyone = np.arange(n)
    out[LEAD] = _leads(d, everyone, texts)
    out[REASON] = _reasons(d, texts, simulated)
    out[CLOSING] = _closings(d, texts)
    return out


def _leads(d: Decisions, rows: np.ndarray, texts: Texts) -> np.ndarray:
    current, previous, direction = d.ctx["current"], d.ctx["previous_drop_mm"], d.direction
    insert = d.ctx["heel_insert_mm"] > 0
    came_down = (previous > current) | (d.ctx["years_in_heeled_shoes"] > 0)
    lo, hi, urgency, referred = d.range_min, d.range_max, d.urgency, d.referred

    def lead(i: int) -> str:
        now = float(current[i])
        if referred[i]:
            when = URGENCY[urgency[i]]
            if lo[i] <= now <= hi[i]:
                keep = REFERRAL_KEEP_INSERT if insert[i] else REFERRAL_KEEP
                return keep.format(when=when, now=round(now, 1))
            return REFERRAL_BACK.format(when=when, back=round(float(previous[i]), 1))
        lead = DIRECTIONS[direction[i]]
        if lead == "keep" and insert[i]:
            lead = "keep_insert"
        elif lead == "lower_gradually" and now - hi[i] <= 4:  # one step
            lead = "lower_once"
        elif lead == "step_back_up" and not came_down[i]:
            lead = "raise"
        now = round(now, 1)
        return LEADS[lead].format(
            now=now, start=START[bool(insert[i])].format(now=now),
            span=span(int(lo[i]), int(hi[i])), weeks=int(d.pace_weeks[i]),
            means=MEANS[bool(insert[i]), lo[i] - now <= INSERT_MAX_MM],
        )  # fmt: skip

    keys = [current, previous, insert, came_down, lo, hi, direction, referred, urgency,
            d.pace_weeks]  # fmt: skip
    return texts.word(rows, keys, lead)


def _first(mask: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the rule of least rank among those the mask (rules x rows) marks, and whether
    there is one."""
    ranked = np.where(mask, rank, NONE)
    return ranked.argmin(axis=0), np.asarray(mask.any(axis=0))


def _reasons(d: Decisions, texts: Texts, simulated: bool) -> np.ndarray:
    book, n = d.book, len(d.band)
    codes = np.zeros(n, dtype=np.int64)
    rank = book.priority
    active = d.fired & ~d.overruled
    # A referral's own first reason, in the referral rules' id order (HD001's first).
    referral_rule, _ = _first(active & book.referrals, np.arange(len(book.rules))[:, None])
    for j in np.unique(referral_rule[d.referred]).tolist():
        rows = np.flatnonzero(d.referred & (referral_rule == j))
        rule = book.rules[j]
        keys = []
        if len(rows) > 1:  # one row: nothing to group
            held = [h[rows] for h in d.reasons[rule.id]]
            keys = [*held, *(d.ctx[name][rows] for name in rule.reads if name in d.ctx)]
        codes[rows] = texts.word(rows, keys, _reason_of(d, rule))
    # Otherwise the rule that forced the change, set the answer, or shaped it most.
    chosen = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=bool)
    for mask in (d.forced, d.shaped & book.sets_band, d.shaped):
        rule, has = _first(mask & book.has_why, rank)
        take = has & ~found
        chosen, found = np.where(take, rule, chosen), found | take
    found &= ~d.referred
    _word_rules(codes, found, chosen, [rule.why for rule in book.rules], texts)
    rest = ~found & ~d.referred
    if rest.any():
        if d.probs is None:
            estimate = RULES_ONLY
        else:
            estimate = MODEL_SIMULATED if simulated else MODEL_ESTIMATE
        codes[rest] = texts.add(estimate)
    return codes


def _word_rules(
    codes: np.ndarray,
    where: np.ndarray,
    rule: np.ndarray,
    sentences: list[str | None],
    texts: Texts,
) -> None:
    """Where marked, a row's code becomes its chosen rule's sentence (one per rule, or None)."""
    for j in set(rule[where].tolist()):
        sentence = sentences[j]
        if sentence:
            codes[where & (rule == j)] = texts.add(sentence)


def _reason_of(d: Decisions, rule: Rule) -> Callable[[int], str]:
    """A referral rule's first reason that held on row i, as a sentence."""

    def sentence(i: int) -> str:
        reason = TemplateValues(d, i, rule).reasons()[0]
        return reason[0].upper() + reason[1:] + "."

    return sentence


def _closings(d: Decisions, texts: Texts) -> np.ndarray:
    """Advice to see a clinician (the first rule's, by id), else what would firm the answer up:
    a rule's (the missing measurement), or for an uncertain answer a re-test."""
    book, n = d.book, len(d.band)
    codes = np.zeros(n, dtype=np.int64)
    see = d.advice & book.clinician
    rule, has = _first(see, np.arange(len(book.rules))[:, None])
    _word_rules(codes, has, rule, [r.see_clinician for r in book.rules], texts)
    open_ = ~has & ~d.referred
    rule, firm = _first(d.fired & ~d.overruled & book.firms_up, np.arange(len(book.rules))[:, None])
    firm &= open_
    _word_rules(codes, firm, rule, [r.firms_up for r in book.rules], texts)
    retest = np.flatnonzero(open_ & ~firm & (d.confidence < LOW_CONFIDENCE_BELOW))
    if len(retest):
        weeks = d.pace_weeks
        codes[retest] = texts.word(
            retest, [weeks[retest]], lambda i: LOW_CONFIDENCE.format(weeks=int(weeks[i]))
        )
    return codes
