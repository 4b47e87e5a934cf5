"""The summary a shop assistant reads out: its sentences, and which of them each answer gets.

Written once for every door: `slots` decides each row's parts for any number of rows, and the
API, `heeldrop recommend` and batch scoring all join the same parts.

After a hard referral, a summary is the referral messages, then the advice to keep the current
drop until then. Otherwise it is, in order: what to do (the lead); up to three messages of rules
that shaped the answer; the rules set aside; the classifier's part; a provisional referral's
message; and the advice that sends the person to a clinician (rules marked `clinician`).
"""

import numpy as np

from service.core.combine import DIRECTIONS, Decisions
from service.core.fields import BANDS
from service.core.texts import Texts, messages

LEADS = {
    "keep": "Keep an effective heel drop of {span} ({band}): your {now:g} mm fits.",
    "lower_gradually": "Lower gradually from {now:g} mm to {span} ({band}), in steps.",
    "raise": "Raise your effective heel drop from {now:g} mm to {span} ({band}).",
    "step_back_up": "Step back up from {now:g} mm to {span} ({band}).",
}
UNTIL_THEN = "Until then, keep your current {now:g} mm."
SET_ASIDE = "Set aside for a higher-priority rule: {names}."
NO_MODEL = "No model is loaded, so this answer comes from the rules alone."
AGREES = "The classifier agrees: {top} is its most likely band ({p:.0%})."  # a rule set the band
CHOSEN = "The band is the classifier's most likely one ({p:.0%})."  # the classifier chose it
MOVED = (
    "The classifier's own top band was {top} ({p:.0%}); the rules above moved the answer to {band}."
)
WHY = 3  # messages of rules that shaped the answer, at most
LEAD, SET_ASIDE_SLOT, MODEL, REFERRAL, CLINICIAN = 0, WHY + 1, WHY + 2, WHY + 3, WHY + 4


def span(lo: int, hi: int) -> str:
    return f"{lo} mm" if lo == hi else f"{lo}-{hi} mm"


def classifier_says(top: str, band: str, p: float, ruled: bool) -> str:
    """The classifier's part in the answer; `ruled`: a rule set the band (HD050)."""
    said = MOVED if top != band else AGREES if ruled else CHOSEN
    return said.format(top=top, band=band, p=p)


def slots(d: Decisions, texts: Texts, said: np.ndarray | None = None) -> np.ndarray:
    """Each row's summary as codes into `texts`, slot by slot (slots x rows; 0 is empty).

    `said` holds the codes of the fired rules' messages (rules x rows, `texts.messages`) when
    the caller has them; otherwise only the messages the summaries use are worded. A part no
    row has (a referral, a rule set aside, advice to see a clinician) costs nothing.
    """
    book = d.book
    n = d.fired.shape[1]
    active = d.fired & ~d.overruled
    stop = (active & book.stops).any(axis=0)
    stopped = stop.any()
    go = ~stop
    told = d.shaped & active & go
    told &= np.cumsum(told, axis=0) <= WHY
    if stopped:  # a hard referral tells every referral message
        told |= active & book.referrals & stop
    set_aside = d.fired & d.overruled & go
    referred = active & book.referrals & go
    if referred.any():
        referred &= np.cumsum(referred, axis=0) == 1  # the first referral (a provisional one)
    if said is None:
        said = messages(d, texts, told | set_aside | referred)
    out = np.zeros((max(CLINICIAN + 1, int(book.referrals.sum()) + 1), n), dtype=np.int64)
    r, i = told.nonzero()
    out[(np.cumsum(told, axis=0) - 1)[r, i] + go[i], i] = said[r, i]  # after the lead, if any
    r, i = referred.nonzero()
    out[REFERRAL, i] = said[r, i]
    rest = go.nonzero()[0]
    if stopped:
        current, stops = d.ctx["current"], stop.nonzero()[0]
        out[told[:, stops].sum(axis=0), stops] = texts.word(
            stops, [current[stops]], lambda i: UNTIL_THEN.format(now=float(current[i]))
        )
        if not len(rest):
            return out
    out[LEAD, rest] = _leads(d, rest, texts)
    if set_aside.any():
        out[SET_ASIDE_SLOT, rest] = _set_aside(np.where(set_aside, said, 0)[:, rest], texts)
    ruled = (active & book.keeps_band).any(axis=0)
    out[MODEL, rest] = _classifier(d, rest, ruled, texts)
    out[CLINICIAN, rest] = _clinician(d, rest, texts)
    return out


def _leads(d: Decisions, rows: np.ndarray, texts: Texts) -> np.ndarray:
    current, band, direction = d.ctx["current"], d.band, d.direction
    lo, hi = d.range_min, d.range_max

    def lead(i: int) -> str:
        return LEADS[DIRECTIONS[direction[i]]].format(
            span=span(int(lo[i]), int(hi[i])), band=BANDS[band[i]], now=float(current[i])
        )

    keys = [current[rows], band[rows], lo[rows], hi[rows], direction[rows]]
    return texts.word(rows, keys, lead)


def _set_aside(asides: np.ndarray, texts: Texts) -> np.ndarray:
    """The sentence naming the rules set aside (by their messages' heads), per row; asides
    holds, rules x rows, the message code of each rule set aside."""
    codes = np.zeros(asides.shape[1], dtype=np.int64)
    at = np.flatnonzero(asides.any(axis=0))
    some = asides[:, at][asides[:, at].any(axis=1)]  # the rules set aside on some row

    def sentence(k: int) -> str:
        names = "; ".join(texts.texts[c].split(":")[0] for c in asides[:, k] if c)
        return SET_ASIDE.format(names=names)

    codes[at] = texts.word(at, list(some), sentence)
    return codes


def _classifier(d: Decisions, rows: np.ndarray, ruled: np.ndarray, texts: Texts) -> np.ndarray:
    """The classifier's part; `ruled` (every row): a rule set the band."""
    if d.probs is None:
        return texts.word(rows, [], lambda i: NO_MODEL)
    top, band = d.model_band, d.band
    p = d.probs[np.arange(len(top)), top]

    def says(i: int) -> str:
        return classifier_says(BANDS[top[i]], BANDS[band[i]], float(p[i]), bool(ruled[i]))

    # f"{p:.0%}" formats p * 100 rounded half to even, which is what rint does to the same double
    keys = [top[rows], band[rows], np.rint(p[rows] * 100), ruled[rows]]
    return texts.word(rows, keys, says)


def _clinician(d: Decisions, rows: np.ndarray, texts: Texts) -> np.ndarray:
    """The advice texts that send a person to a clinician, in id order, as one part per row
    (a hard referral has silenced all advice already)."""
    codes = np.zeros(len(rows), dtype=np.int64)
    marked = d.book.clinician[:, 0]
    if not (d.advice[marked].any()):
        return codes
    marked = marked.nonzero()[0]
    given = d.advice[marked][:, rows]
    at = np.flatnonzero(given.any(axis=0))

    def advice(i: int) -> str:
        return " ".join(d.book.rules[j].advice or "" for j in marked if d.advice[j, i])

    codes[at] = texts.word(rows[at], list(given[:, at]), advice)
    return codes
