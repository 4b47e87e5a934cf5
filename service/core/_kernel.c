/* The rule kernel: runs the rules' compiled expressions and every combining step of RULES.md
 * over n rows in one pass, for one request (n = 1) or a million rows alike.
 *
 * service/conditions.py compiles the rules' expressions to register code: rows of
 * (op, dst, a, b). Registers 0..S-1 are the rows of the S x n context matrix; the others are
 * constants, temporaries and the values the combining steps write for later stages (the
 * allowed interval and the range). The code runs over blocks of BLOCK rows, one instruction at
 * a time over the whole block, so the dispatch costs once per block and the inner loops are
 * plain arithmetic. service/combine.py lays out the rule table and reads the results.
 *
 * Nothing is trusted: every register index, opcode and buffer size is checked before any row is
 * read, so a bad layout is a ValueError, never a crash.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 256
#define BANDS 5

/* numpy's fmax and fmin: a NaN gives way to the other value (libm's are calls, these inline). */
static inline double max_of(double a, double b) { return a > b || isnan(b) ? a : b; }
static inline double min_of(double a, double b) { return a < b || isnan(b) ? a : b; }

enum { LT, LE, GT, GE, EQ, NE, ADD, SUB, MUL, NEG, FMAX, FMIN, ISNAN, AND, OR, NOT, NOPS };
enum { REFERRAL, BOUNDS, ADVICE, BAND, RANGE, PACE, NSTAGES };
/* Columns of the rule table (one row per rule, in priority order within a stage). */
enum { T_STAGE, T_WHEN, T_FLOOR, T_CEILING, T_ADVICE_WHEN, T_URGENCY, T_STOPS, T_HAS_ADVICE,
       T_BAND, T_PACE, T_COLS };
/* Registers the combining steps read or write. */
enum { R_CURRENT, R_CURRENT_BAND, R_ALLOWED_MIN, R_ALLOWED_MAX, R_RANGE_MIN, R_RANGE_MAX, R_COLS };
/* The numbers the combining steps use (service/combine.py says what each is): after the bands'
 * lower and upper ends, these. */
enum { L_REFERRAL_CONFIDENCE = 2 * BANDS, L_RULES_ONLY_CONFIDENCE, L_DEFAULT_PACE_WEEKS, L_MAX_DROP,
       L_COLS };
/* Columns of the per-row results. */
enum { O_LO, O_HI, O_MODEL_BAND, O_BAND, O_RANGE_MIN, O_RANGE_MAX, O_DIRECTION, O_PACE,
       O_CONFIDENCE, O_URGENCY, O_COLS };

typedef struct {
    const int32_t *code;
    Py_ssize_t ncode, nregs, nslots;
    const int32_t *creg;
    const double *cval;
    Py_ssize_t nconst;
    const double *ctx;
    Py_ssize_t n;
} Program;

static int program_ok(const Program *p) {
    if (p->nslots < 0 || p->nregs < p->nslots) return 0;
    for (Py_ssize_t k = 0; k < p->ncode; k++) {
        const int32_t *ins = p->code + 4 * k;
        int unary = ins[0] == NEG || ins[0] == ISNAN || ins[0] == NOT;
        if (ins[0] < 0 || ins[0] >= NOPS) return 0;
        if (ins[1] < p->nslots || ins[1] >= p->nregs) return 0;
        if (ins[2] < 0 || ins[2] >= p->nregs) return 0;
        if (!unary && (ins[3] < 0 || ins[3] >= p->nregs)) return 0;
        if (ins[1] == ins[2] || (!unary && ins[1] == ins[3])) return 0;  /* see run_code */
    }
    for (Py_ssize_t k = 0; k < p->nconst; k++)
        if (p->creg[k] < p->nslots || p->creg[k] >= p->nregs) return 0;
    return 1;
}

/* The registers of the block starting at row `start`: context rows in place, the rest scratch. */
static void point(const Program *p, double **reg, double *scratch, Py_ssize_t start) {
    for (Py_ssize_t r = 0; r < p->nslots; r++) reg[r] = (double *)p->ctx + r * p->n + start;
    for (Py_ssize_t r = p->nslots; r < p->nregs; r++)
        reg[r] = scratch + (r - p->nslots) * BLOCK;
}

static void fill_constants(const Program *p, double *scratch) {
    for (Py_ssize_t k = 0; k < p->nconst; k++) {
        double *d = scratch + (p->creg[k] - p->nslots) * BLOCK;
        for (int i = 0; i < BLOCK; i++) d[i] = p->cval[k];
    }
}

/* NaN compares false, as in numpy; `and`/`or`/`not` treat any non-zero (NaN too) as true. */
static void run_code(const Program *p, Py_ssize_t from, Py_ssize_t to, double **reg, Py_ssize_t m) {
    for (Py_ssize_t k = from; k < to; k++) {
        const int32_t *ins = p->code + 4 * k;
        double *restrict d = reg[ins[1]];  /* registers are written once: never an operand */
        const double *restrict a = reg[ins[2]];
        const double *restrict b = ins[3] >= 0 && ins[3] < p->nregs ? reg[ins[3]] : a;
        Py_ssize_t i;
        switch (ins[0]) {
        case LT: for (i = 0; i < m; i++) d[i] = a[i] < b[i]; break;
        case LE: for (i = 0; i < m; i++) d[i] = a[i] <= b[i]; break;
        case GT: for (i = 0; i < m; i++) d[i] = a[i] > b[i]; break;
        case GE: for (i = 0; i < m; i++) d[i] = a[i] >= b[i]; break;
        case EQ: for (i = 0; i < m; i++) d[i] = a[i] == b[i]; break;
        case NE: for (i = 0; i < m; i++) d[i] = a[i] != b[i]; break;
        case ADD: for (i = 0; i < m; i++) d[i] = a[i] + b[i]; break;
        case SUB: for (i = 0; i < m; i++) d[i] = a[i] - b[i]; break;
        case MUL: for (i = 0; i < m; i++) d[i] = a[i] * b[i]; break;
        case NEG: for (i = 0; i < m; i++) d[i] = -a[i]; break;
        case FMAX: for (i = 0; i < m; i++) d[i] = max_of(a[i], b[i]); break;
        case FMIN: for (i = 0; i < m; i++) d[i] = min_of(a[i], b[i]); break;
        case ISNAN: for (i = 0; i < m; i++) d[i] = isnan(a[i]); break;
        case AND: for (i = 0; i < m; i++) d[i] = (a[i] != 0.0) & (b[i] != 0.0); break;
        case OR: for (i = 0; i < m; i++) d[i] = (a[i] != 0.0) | (b[i] != 0.0); break;
        case NOT: for (i = 0; i < m; i++) d[i] = a[i] == 0.0; break;
        }
    }
}

static int parse_program(Program *p, Py_buffer *code, Py_ssize_t nregs, Py_ssize_t nslots,
                         Py_buffer *creg, Py_buffer *cval, Py_buffer *ctx, Py_ssize_t n) {
    p->code = code->buf;
    p->ncode = code->len / (4 * (Py_ssize_t)sizeof(int32_t));
    p->nregs = nregs;
    p->nslots = nslots;
    p->creg = creg->buf;
    p->cval = cval->buf;
    p->nconst = creg->len / (Py_ssize_t)sizeof(int32_t);
    p->ctx = ctx->buf;
    p->n = n;
    if (n < 0 || code->len % (4 * sizeof(int32_t)) || cval->len != p->nconst * (Py_ssize_t)sizeof(double)
        || ctx->len != nslots * n * (Py_ssize_t)sizeof(double) || !program_ok(p)) {
        PyErr_SetString(PyExc_ValueError, "the program does not fit its registers or context");
        return 0;
    }
    return 1;
}

/* evaluate(code, nregs, nslots, creg, cval, ctx, n, regs, out): the values of `regs` (int32)
 * for every row into out (len(regs) x n float64). For checking a single expression. */
static PyObject *evaluate(PyObject *self, PyObject *args) {
    Py_buffer code, creg, cval, ctx, regs, out;
    Py_ssize_t nregs, nslots, n;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*ny*w*", &code, &nregs, &nslots, &creg, &cval, &ctx, &n,
                          &regs, &out))
        return NULL;
    PyObject *result = NULL;
    Program p;
    const int32_t *want = regs.buf;
    Py_ssize_t nwant = regs.len / (Py_ssize_t)sizeof(int32_t);
    double *dst = out.buf;
    double *scratch = NULL;
    double **reg = NULL;
    if (!parse_program(&p, &code, nregs, nslots, &creg, &cval, &ctx, n)) goto done;
    for (Py_ssize_t k = 0; k < nwant; k++)
        if (want[k] < 0 || want[k] >= nregs) {
            PyErr_SetString(PyExc_ValueError, "a register out of range");
            goto done;
        }
    if (out.len != nwant * n * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "the output does not fit");
        goto done;
    }
    scratch = malloc(sizeof(double) * BLOCK * (size_t)(nregs - nslots + 1));
    reg = malloc(sizeof(double *) * (size_t)(nregs + 1));
    if (!scratch || !reg) {
        PyErr_NoMemory();
        goto done;
    }
    fill_constants(&p, scratch);
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t m = n - start < BLOCK ? n - start : BLOCK;
        point(&p, reg, scratch, start);
        run_code(&p, 0, p.ncode, reg, m);
        for (Py_ssize_t k = 0; k < nwant; k++) memcpy(dst + k * n + start, reg[want[k]], m * sizeof(double));
    }
    result = Py_NewRef(Py_None);
done:
    free(scratch);
    free(reg);
    PyBuffer_Release(&code);
    PyBuffer_Release(&creg);
    PyBuffer_Release(&cval);
    PyBuffer_Release(&ctx);
    PyBuffer_Release(&regs);
    PyBuffer_Release(&out);
    return result;
}

typedef struct {
    const int32_t *table, *reasons, *special;
    const double *factor, *band_lo, *band_hi, *limit, *probs;
    Py_ssize_t nrules, nreasons, n;
    int has_probs;
    int32_t *order;                /* rule indices, stage by stage, in priority order */
    Py_ssize_t first[NSTAGES + 1]; /* where each stage's rules start in `order` */
    uint8_t *fired, *overruled, *advice, *shaped, *reason_out, *stop;
    double *floors, *ceilings, *rows;
} Book;

#define RULE_OF(book, j, col) ((book)->table[(j) * T_COLS + (col)])
#define RULE(j, col) RULE_OF(b, j, col)
#define HELD(reg, t) ((reg)[t] != 0.0)

static double band_choice(const Book *b, Py_ssize_t i, double cur, double lo, double hi,
                          double *model_band) {
    int best = 0;
    if (b->has_probs) {
        const double *p = b->probs + i * BANDS;
        int top = 0;
        double bestp = -INFINITY;
        for (int k = 1; k < BANDS; k++)
            if (p[k] > p[top]) top = k;
        for (int k = 0; k < BANDS; k++) {
            double v = (hi >= b->band_lo[k] && lo <= b->band_hi[k]) ? p[k] : -1.0;
            if (v > bestp) bestp = v, best = k;
        }
        *model_band = top;
        return best;
    }
    double gap_best = INFINITY;
    for (int k = 0; k < BANDS; k++) {
        double gap = max_of(max_of(b->band_lo[k] - cur, cur - b->band_hi[k]), 0.0);
        double v = (hi >= b->band_lo[k] && lo <= b->band_hi[k]) ? gap : INFINITY;
        if (k == 0 || v < gap_best) gap_best = v, best = k;
    }
    *model_band = -1;
    return best;
}

/* Which of a stage's rules fired on each row of the block starting at row `start`. */
static void stage_fired(const Book *b, int stage, double **reg, Py_ssize_t start, Py_ssize_t m) {
    for (const int32_t *r = b->order + b->first[stage]; r < b->order + b->first[stage + 1]; r++) {
        const double *when = reg[RULE(*r, T_WHEN)];
        uint8_t *fired = b->fired + start * b->nrules + *r;
        for (Py_ssize_t t = 0; t < m; t++) fired[t * b->nrules] = HELD(when, t);
    }
}

/* One stage's combining step for row t of the block (row i overall), after its code ran and
 * stage_fired. */
static void stage_step(const Book *b, int stage, double **reg, Py_ssize_t t, Py_ssize_t i) {
    Py_ssize_t nr = b->nrules;
    uint8_t *fired = b->fired + i * nr, *over = b->overruled + i * nr;
    double *row = b->rows + i * O_COLS;
    double cur = reg[b->special[R_CURRENT]][t];
    const int32_t *from = b->order + b->first[stage], *to = b->order + b->first[stage + 1], *r;
    if (stage == REFERRAL) {
        uint8_t stop = 0;
        memset(over, 0, nr);
        for (r = from; r < to; r++) stop |= fired[*r] && RULE(*r, T_STOPS);
        b->stop[t] = stop;
        for (Py_ssize_t q = 0; q < b->nreasons; q++)
            b->reason_out[i * b->nreasons + q] = HELD(reg[b->reasons[q]], t);
    } else if (stage == BOUNDS) {  /* in priority order; a bound that would empty [lo, hi] drops */
        double lo = 0.0, hi = b->limit[L_MAX_DROP];
        for (r = from; r < to; r++) {
            Py_ssize_t j = *r;
            double new_lo = lo, new_hi = hi;
            if (RULE(j, T_FLOOR) >= 0) {
                double floor_ = ceil(reg[RULE(j, T_FLOOR)][t]);
                b->floors[j * b->n + i] = floor_;
                new_lo = max_of(lo, floor_);
            }
            if (RULE(j, T_CEILING) >= 0) {
                double ceiling = floor(reg[RULE(j, T_CEILING)][t]);
                b->ceilings[j * b->n + i] = ceiling;
                new_hi = min_of(hi, ceiling);
            }
            if (!fired[j]) continue;
            if (new_lo <= new_hi) lo = new_lo, hi = new_hi;
            else over[j] = 1;
        }
        row[O_LO] = lo, row[O_HI] = hi;
    } else if (stage == BAND) {
        double lo = row[O_LO], hi = row[O_HI];
        double band = band_choice(b, i, cur, lo, hi, &row[O_MODEL_BAND]);
        int target = (int)reg[b->special[R_CURRENT_BAND]][t];
        if (target < 0) target = 0;
        if (target >= BANDS) target = BANDS - 1;
        int fits = b->band_lo[target] <= hi && b->band_hi[target] >= lo;
        for (r = from; r < to; r++) {
            if (!fired[*r]) continue;
            if (fits) band = target;
            else over[*r] = 1;
        }
        row[O_BAND] = band;
        row[O_RANGE_MIN] = max_of(b->band_lo[(int)band], lo);
        row[O_RANGE_MAX] = min_of(b->band_hi[(int)band], hi);
        reg[b->special[R_ALLOWED_MIN]][t] = lo, reg[b->special[R_ALLOWED_MAX]][t] = hi;
        reg[b->special[R_RANGE_MIN]][t] = row[O_RANGE_MIN];
        reg[b->special[R_RANGE_MAX]][t] = row[O_RANGE_MAX];
    } else if (stage == RANGE) {
        double rmin = row[O_RANGE_MIN], rmax = row[O_RANGE_MAX];
        for (r = from; r < to; r++)
            if (fired[*r]) rmin = min_of(rmin, floor(cur)), rmax = max_of(rmax, ceil(cur));
        if (b->stop[t]) {  /* a hard referral: no change */
            rmin = floor(cur), rmax = ceil(cur);
            row[O_BAND] = reg[b->special[R_CURRENT_BAND]][t];
        }
        /* an effective drop over 30 mm (a 30 mm shoe plus an insert) still gets a range in 0-30 */
        row[O_RANGE_MIN] = min_of(rmin, b->limit[L_MAX_DROP]);
        row[O_RANGE_MAX] = min_of(rmax, b->limit[L_MAX_DROP]);
        reg[b->special[R_RANGE_MIN]][t] = row[O_RANGE_MIN];
        reg[b->special[R_RANGE_MAX]][t] = row[O_RANGE_MAX];
    } else if (stage == PACE) {
        double pace = b->limit[L_DEFAULT_PACE_WEEKS];
        for (r = from; r < to; r++)
            if (fired[*r]) pace = max_of(pace, RULE(*r, T_PACE));
        row[O_PACE] = pace;
    }
}

/* After the last stage: overruling by a hard referral, advice, confidence, urgency, direction. */
static void finish_row(const Book *b, double **reg, Py_ssize_t t, Py_ssize_t i) {
    Py_ssize_t nr = b->nrules;
    uint8_t *fired = b->fired + i * nr, *over = b->overruled + i * nr, *adv = b->advice + i * nr;
    double *row = b->rows + i * O_COLS;
    double cur = reg[b->special[R_CURRENT]][t];
    uint8_t stop = b->stop[t];
    double factor = 1.0, urgency = 0.0;
    memset(adv, 0, nr);
    for (Py_ssize_t j = 0; j < nr; j++) {
        if (!fired[j]) continue;
        /* a bound set aside for a higher-priority bound keeps its advice; a hard referral not */
        adv[j] = RULE(j, T_HAS_ADVICE) && !stop;
        if (stop && !RULE(j, T_STOPS)) over[j] = 1;
        if (RULE(j, T_ADVICE_WHEN) >= 0) adv[j] = adv[j] && HELD(reg[RULE(j, T_ADVICE_WHEN)], t);
        if (!over[j]) {
            factor *= b->factor[j];
            if (RULE(j, T_URGENCY) > urgency) urgency = RULE(j, T_URGENCY);
        }
    }
    int band = (int)row[O_BAND];
    double base = b->has_probs ? b->probs[i * BANDS + band] : b->limit[L_RULES_ONLY_CONFIDENCE];
    double rmin = row[O_RANGE_MIN], rmax = row[O_RANGE_MAX];
    double direction = cur > rmax ? 1 : cur >= rmin ? 0 : cur <= 2 ? 3 : 2;
    if (stop) factor *= b->limit[L_REFERRAL_CONFIDENCE], direction = 0;
    row[O_DIRECTION] = direction;
    row[O_CONFIDENCE] = min_of(base * factor, 1.0);
    row[O_URGENCY] = urgency;
    /* Which rules shaped the answer (the summary names them): a rule that set the band or widened
     * the range; a binding end of [lo, hi] that, on its side, excluded the model's top band or
     * trimmed the chosen band; a bound beyond the current drop when the answer changes shoes. */
    uint8_t *shaped = b->shaped + i * nr;
    double lo = row[O_LO], hi = row[O_HI];
    int top = row[O_MODEL_BAND] >= 0 ? (int)row[O_MODEL_BAND] : band, changes = direction != 0;
    int low_side = b->band_hi[top] < lo || b->band_lo[band] < lo;
    int high_side = b->band_lo[top] > hi || b->band_hi[band] > hi;
    for (Py_ssize_t j = 0; j < nr; j++) {
        int s = RULE(j, T_BAND) || RULE(j, T_STAGE) == RANGE;
        if (RULE(j, T_FLOOR) >= 0) {
            double f = b->floors[j * b->n + i];
            s = s || (f == lo && low_side) || (changes && f > cur);
        }
        if (RULE(j, T_CEILING) >= 0) {
            double c = b->ceilings[j * b->n + i];
            s = s || (c == hi && high_side) || (changes && c < cur);
        }
        shaped[j] = (uint8_t)s;
    }
}

/* combine(code, nregs, nslots, creg, cval, segments, table, factor, reasons, special, limits,
 *         ctx, n, probs, flags, bounds, reason_out, rows):
 * segments: NSTAGES + 2 offsets into code (the code every rule reads first, then each stage's);
 * flags: 4 x n x rules uint8 (fired, overruled, advice, shaped), bounds: 2 x rules x n (floor, ceiling;
 * written only for the rules that have one, so the others' pages are never touched),
 * reason_out: n x reasons uint8, rows: n x O_COLS float64. probs is n x 5, or empty. */
static PyObject *combine(PyObject *self, PyObject *args) {
    Py_buffer code, creg, cval, segs, table, factor, reasons, special, limits, ctx, probs, flags,
        bounds, reason_out, rows;
    Py_ssize_t nregs, nslots, n;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*y*y*y*y*ny*w*w*w*w*", &code, &nregs, &nslots, &creg,
                          &cval, &segs, &table, &factor, &reasons, &special, &limits, &ctx, &n,
                          &probs, &flags, &bounds, &reason_out, &rows))
        return NULL;
    PyObject *result = NULL;
    Program p;
    Book b;
    b.order = NULL;
    double *scratch = NULL, **reg = NULL;
    uint8_t stop[BLOCK];
    const int32_t *seg = segs.buf;
    if (!parse_program(&p, &code, nregs, nslots, &creg, &cval, &ctx, n)) goto done;
    b.table = table.buf, b.reasons = reasons.buf, b.special = special.buf;
    b.factor = factor.buf, b.limit = limits.buf, b.probs = probs.buf;
    b.band_lo = b.limit, b.band_hi = b.limit + BANDS;
    b.nrules = table.len / (T_COLS * (Py_ssize_t)sizeof(int32_t));
    b.nreasons = reasons.len / (Py_ssize_t)sizeof(int32_t);
    b.has_probs = probs.len > 0;
    b.n = n;
    b.fired = flags.buf;
    b.overruled = b.fired + n * b.nrules;
    b.advice = b.overruled + n * b.nrules;
    b.shaped = b.advice + n * b.nrules;
    b.floors = bounds.buf;
    b.ceilings = b.floors + n * b.nrules;
    b.reason_out = reason_out.buf, b.rows = rows.buf, b.stop = stop;
    int ok = segs.len == (NSTAGES + 2) * (Py_ssize_t)sizeof(int32_t)
        && table.len == b.nrules * T_COLS * (Py_ssize_t)sizeof(int32_t)
        && factor.len == b.nrules * (Py_ssize_t)sizeof(double)
        && special.len == R_COLS * (Py_ssize_t)sizeof(int32_t)
        && limits.len == L_COLS * (Py_ssize_t)sizeof(double)
        && (probs.len == 0 || probs.len == n * BANDS * (Py_ssize_t)sizeof(double))
        && flags.len == 4 * n * b.nrules && bounds.len == 2 * n * b.nrules * (Py_ssize_t)sizeof(double)
        && reason_out.len == n * b.nreasons && rows.len == n * O_COLS * (Py_ssize_t)sizeof(double);
    for (int k = 0; ok && k < NSTAGES + 2; k++)
        ok = seg[k] >= (k ? seg[k - 1] : 0) && seg[k] <= p.ncode;
    for (int k = 0; ok && k < R_COLS; k++)
        ok = b.special[k] >= 0 && b.special[k] < nregs && (k < R_ALLOWED_MIN || b.special[k] >= nslots);
    for (Py_ssize_t q = 0; ok && q < b.nreasons; q++) ok = b.reasons[q] >= 0 && b.reasons[q] < nregs;
    for (Py_ssize_t j = 0; ok && j < b.nrules; j++) {
        ok = RULE_OF(&b, j, T_STAGE) >= 0 && RULE_OF(&b, j, T_STAGE) < NSTAGES;
        for (int col = T_WHEN; ok && col <= T_ADVICE_WHEN; col++)
            ok = RULE_OF(&b, j, col) >= (col == T_WHEN ? 0 : -1) && RULE_OF(&b, j, col) < nregs;
    }
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "the rule table does not fit its program or outputs");
        goto done;
    }
    scratch = malloc(sizeof(double) * BLOCK * (size_t)(nregs - nslots + 1));
    reg = malloc(sizeof(double *) * (size_t)(nregs + 1));
    b.order = malloc(sizeof(int32_t) * (size_t)(b.nrules + 1));
    if (!scratch || !reg || !b.order) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t k = 0;
    for (int stage = 0; stage < NSTAGES; stage++) {
        b.first[stage] = k;
        for (Py_ssize_t j = 0; j < b.nrules; j++)
            if (RULE_OF(&b, j, T_STAGE) == stage) b.order[k++] = (int32_t)j;
    }
    b.first[NSTAGES] = k;
    fill_constants(&p, scratch);
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t m = n - start < BLOCK ? n - start : BLOCK;
        point(&p, reg, scratch, start);
        run_code(&p, seg[0], seg[1], reg, m);
        for (int stage = 0; stage < NSTAGES; stage++) {
            run_code(&p, seg[stage + 1], seg[stage + 2], reg, m);
            stage_fired(&b, stage, reg, start, m);
            for (Py_ssize_t t = 0; t < m; t++) stage_step(&b, stage, reg, t, start + t);
        }
        for (Py_ssize_t t = 0; t < m; t++) finish_row(&b, reg, t, start + t);
    }
    result = Py_NewRef(Py_None);
done:
    free(scratch);
    free(reg);
    free(b.order);
    Py_buffer *all[] = {&code, &creg, &cval, &segs, &table, &factor, &reasons, &special, &limits,
                        &ctx, &probs, &flags, &bounds, &reason_out, &rows};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) PyBuffer_Release(all[k]);
    return result;
}

/* ---- Features: RULES.md's derived values and the classifier's inputs (service/features.py) ---- */

/* Rows of the input matrix, in the order of features.INPUTS: the eight severities (in
 * fields.SEVERITIES order), the numbers, then four enums as their codes (columns.py). */
enum { I_SEVERITIES = 0, I_CURRENT_DROP = 8, I_HEEL_INSERT, I_KTW_LEFT, I_KTW_RIGHT, I_LUNGE_LEFT,
       I_LUNGE_RIGHT, I_RUNNING_KM, I_RUNNING_YEARS, I_SQUATS_IN_LIFTING_SHOES, I_YEARS_HEELED,
       I_HIGH_HEEL_HOURS, I_WEEKS, I_STARTED_AFTER, I_DEEP_SQUAT, I_AGE, I_MASS, I_PREVIOUS_DROP,
       I_MEASURED_IN, I_PRIMARY, I_SEX, I_RESTRICTION_FELT, I_COLS };
/* Rows of the derived matrix, in the order of features.DERIVED_ROWS: the eight severities with
 * absent as 0, then these. */
enum { D_SEVERITIES = 0, D_CURRENT = 8, D_KTW_LEFT, D_KTW_RIGHT, D_KTW_MIN, D_KTW_ASYM, D_PAIN3,
       D_REGULAR_RUNNER, D_LIFTING, D_CURRENT_BAND, D_COLS };
/* The constants features.py names: the band edges (a drop at or past edge k is past band k),
 * cm of knee-to-wall per degree of lunge, a shoe's heel in cm, then the codes of the enum
 * options the features test for. */
enum { F_EDGES = 0, F_CM_PER_DEGREE = BANDS - 1, F_SHOE_HEEL_CM, F_SHOES, F_RUNNING,
       F_WEIGHTLIFTING, F_MALE, F_FRONT, F_BOTH, F_BACK, F_COLS };
#define FEATURE_COUNT 44 /* len(features.FEATURES) */

static inline double flag(int held) { return held ? 1.0 : 0.0; }

/* Rows start..start+m-1, quantity by quantity over the block (loops the compiler vectorises):
 * the same arithmetic, in the same order, as the numpy definitions it replaced, so training
 * (which calls this too) and serving see identical values. A comparison with NaN is false;
 * max_of/min_of ignore a NaN as numpy's fmax/fmin do. */
static void feature_block(const double *in, Py_ssize_t n, Py_ssize_t start, Py_ssize_t m,
                          const double *lim, double *der, double *X) {
#define IN(k) (in + (k) * n + start)
#define DER(k) (der + (k) * n + start)
    double pain_max[BLOCK], heel[BLOCK];
    const double *current = DER(D_CURRENT), *ktw = DER(D_KTW_MIN), *band = DER(D_CURRENT_BAND);
    const double *pain3 = DER(D_PAIN3), *runner = DER(D_REGULAR_RUNNER), *sev = DER(D_SEVERITIES);
    Py_ssize_t i;
    for (int k = 0; k < 8; k++) {
        const double *x = IN(I_SEVERITIES + k);
        double *d = DER(D_SEVERITIES + k);
        for (i = 0; i < m; i++) d[i] = max_of(x[i], 0.0);
    }
    for (i = 0; i < m; i++) DER(D_CURRENT)[i] = IN(I_CURRENT_DROP)[i] + max_of(IN(I_HEEL_INSERT)[i], 0.0);
    for (i = 0; i < m; i++) heel[i] = lim[F_SHOE_HEEL_CM] * flag(IN(I_MEASURED_IN)[i] == lim[F_SHOES]);
    for (int side = 0; side < 2; side++) {
        const double *k2w = IN(I_KTW_LEFT + side), *lunge = IN(I_LUNGE_LEFT + side);
        double *d = DER(D_KTW_LEFT + side);
        for (i = 0; i < m; i++)
            d[i] = (isnan(k2w[i]) ? lunge[i] * lim[F_CM_PER_DEGREE] : k2w[i]) - heel[i];
    }
    for (i = 0; i < m; i++) {
        double left = DER(D_KTW_LEFT)[i], right = DER(D_KTW_RIGHT)[i];
        DER(D_KTW_MIN)[i] = min_of(left, right);
        DER(D_KTW_ASYM)[i] = fabs(left - right);
    }
    for (i = 0; i < m; i++) pain_max[i] = sev[i];
    for (int k = 1; k < 6; k++)
        for (i = 0; i < m; i++) pain_max[i] = max_of(pain_max[i], sev[k * n + i]);
    for (i = 0; i < m; i++) {
        double primary = IN(I_PRIMARY)[i];
        int runs = primary == lim[F_RUNNING] || IN(I_RUNNING_KM)[i] >= 5;
        DER(D_PAIN3)[i] = flag(pain_max[i] >= 3);
        DER(D_REGULAR_RUNNER)[i] = flag(IN(I_RUNNING_YEARS)[i] >= 0.5 && runs);
        DER(D_LIFTING)[i] = flag(primary == lim[F_WEIGHTLIFTING] || IN(I_SQUATS_IN_LIFTING_SHOES)[i] == 1);
    }
    for (i = 0; i < m; i++) {  /* as numpy's searchsorted: NaN past every edge */
        double c = current[i];
        int b = isnan(c) ? BANDS - 1 : 0;
        for (int k = 0; k < BANDS - 1; k++) b += lim[F_EDGES + k] <= c;
        DER(D_CURRENT_BAND)[i] = b;
    }
    /* The classifier's inputs, feature by feature (FEATURES order), each over the block. */
    const double *felt = IN(I_RESTRICTION_FELT), *weeks = IN(I_WEEKS), *mass = IN(I_MASS);
    const double *started = IN(I_STARTED_AFTER);
    double heeled[BLOCK], front[BLOCK], convert[BLOCK], adapted[BLOCK], male[BLOCK];
    double felt_back[BLOCK];
    for (i = 0; i < m; i++) {
        heeled[i] = max_of(IN(I_YEARS_HEELED)[i], 0.0);
        male[i] = flag(IN(I_SEX)[i] == lim[F_MALE]);
        felt_back[i] = flag(felt[i] == lim[F_BACK]);
        front[i] = flag(felt[i] == lim[F_FRONT] || felt[i] == lim[F_BOTH]);
        convert[i] = flag(current[i] <= 2 && (started[i] == 1 || weeks[i] < 26) && heeled[i] >= 5);
        adapted[i] = flag(pain3[i] == 0.0 && ktw[i] >= 10);
    }
    int f = 0;
#define COLUMN(expr)                                       \
    do {                                                   \
        double *col_ = X + (Py_ssize_t)f++ * n + start;    \
        for (i = 0; i < m; i++) col_[i] = (expr);          \
    } while (0)
    COLUMN(current[i]);
    for (int b = 0; b < BANDS; b++) COLUMN(flag(band[i] == b));
    COLUMN(IN(I_AGE)[i]);
    COLUMN(mass[i]);
    COLUMN(male[i]);
    COLUMN(heeled[i]);
    COLUMN(log1p(weeks[i]));
    COLUMN(current[i] - IN(I_PREVIOUS_DROP)[i]);
    COLUMN(max_of(IN(I_HIGH_HEEL_HOURS)[i], 0.0));
    COLUMN(max_of(IN(I_RUNNING_KM)[i], 0.0));
    COLUMN(runner[i]);
    COLUMN(DER(D_LIFTING)[i]);
    for (int k = 0; k < 6; k++) COLUMN(sev[k * n + i]);
    COLUMN(flag(started[i] == 1));
    COLUMN(ktw[i]);
    COLUMN(flag(isnan(ktw[i])));
    COLUMN(flag(ktw[i] < 6));
    COLUMN(flag(ktw[i] < 10));
    COLUMN(max_of(DER(D_KTW_ASYM)[i], 0.0));
    COLUMN(front[i]);
    COLUMN(felt_back[i]);
    COLUMN(flag(IN(I_DEEP_SQUAT)[i] == 1));
    COLUMN(convert[i]);
    COLUMN(convert[i] * max_of(max_of(sev[n + i], sev[2 * n + i]), sev[3 * n + i]));  /* calf, Achilles, heel */
    COLUMN(current[i] * current[i] / 10);
    COLUMN(adapted[i]);
    COLUMN(adapted[i] * current[i]);
    for (int k = 2; k < 6; k++) COLUMN(flag(sev[k * n + i] >= 3));
    COLUMN(min_of(max_of(mass[i] - 71.4, 0.0) / 20, 1.0));
    COLUMN(runner[i] * flag(current[i] <= 6));
    COLUMN(front[i] * flag(ktw[i] < 6));
    COLUMN(felt_back[i] * flag(ktw[i] < 6));
#undef COLUMN
#undef IN
#undef DER
}

/* features(inputs, n, limits, derived, X): inputs I_COLS x n, limits F_COLS, derived D_COLS x n
 * and X FEATURE_COUNT x n (feature by feature), all float64. */
static PyObject *features(PyObject *self, PyObject *args) {
    Py_buffer in, lim, der, X;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y*ny*w*w*", &in, &n, &lim, &der, &X)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t cell = (Py_ssize_t)sizeof(double);
    if (n < 0 || in.len != I_COLS * n * cell || lim.len != F_COLS * cell
        || der.len != D_COLS * n * cell || X.len != FEATURE_COUNT * n * cell) {
        PyErr_SetString(PyExc_ValueError, "the feature buffers do not fit");
        goto done;
    }
    for (Py_ssize_t start = 0; start < n; start += BLOCK)
        feature_block(in.buf, n, start, n - start < BLOCK ? n - start : BLOCK, lim.buf, der.buf,
                      X.buf);
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&in);
    PyBuffer_Release(&lim);
    PyBuffer_Release(&der);
    PyBuffer_Release(&X);
    return result;
}

/* ---- The classifier: impute, standardise, a multinomial linear model, temperature, softmax ---- */

/* linear(xt, n, fill, mean, scale, coef, intercept, beta, groups, probs, factors): xt is the
 * K x n model matrix (feature by feature), fill/mean/scale K, coef BANDS x K, intercept BANDS,
 * groups K int32 (each feature's input group, 0..G-1); probs n x BANDS out; factors n x G out,
 * or empty for none: per row and group, log p(top band) minus its value with that group's
 * features set to typical (the imputer's fill), the model being linear before its softmax. */
static PyObject *linear(PyObject *self, PyObject *args) {
    Py_buffer xt, fill, mean, scale, coef, icpt, groups, probs, factors;
    Py_ssize_t n;
    double beta;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*y*y*dy*w*w*", &xt, &n, &fill, &mean, &scale, &coef, &icpt,
                          &beta, &groups, &probs, &factors))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t cell = (Py_ssize_t)sizeof(double), K = fill.len / cell, G = 0;
    const int32_t *group = groups.buf;
    for (Py_ssize_t k = 0; k < groups.len / (Py_ssize_t)sizeof(int32_t); k++)
        if (group[k] + 1 > G) G = group[k] + 1;
    int ok = n >= 0 && K > 0 && xt.len == K * n * cell && mean.len == fill.len
        && scale.len == fill.len && coef.len == BANDS * K * cell && icpt.len == BANDS * cell
        && groups.len == K * (Py_ssize_t)sizeof(int32_t) && probs.len == n * BANDS * cell
        && (factors.len == 0 || factors.len == n * G * cell) && G <= 64;
    for (Py_ssize_t k = 0; ok && k < K; k++) ok = group[k] >= 0;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "the model's buffers do not fit");
        goto done;
    }
    const double *X = xt.buf, *f = fill.buf, *mu = mean.buf, *sd = scale.buf, *w = coef.buf;
    const double *b0 = icpt.buf;
    double *P = probs.buf, *F = factors.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        double logit[BANDS], *p = P + i * BANDS, peak = -INFINITY, sum = 0.0;
        for (int b = 0; b < BANDS; b++) logit[b] = 0.0;
        for (Py_ssize_t k = 0; k < K; k++) {
            double x = X[k * n + i];
            double z = ((isnan(x) ? f[k] : x) - mu[k]) / sd[k];
            for (int b = 0; b < BANDS; b++) logit[b] += z * w[b * K + k];
        }
        for (int b = 0; b < BANDS; b++) {
            logit[b] = (logit[b] + b0[b]) * beta;
            peak = max_of(peak, logit[b]);
        }
        for (int b = 0; b < BANDS; b++) sum += p[b] = exp(logit[b] - peak);
        for (int b = 0; b < BANDS; b++) p[b] /= sum;
        if (!factors.len) continue;
        double shift[64][BANDS], logp[BANDS];
        int top = 0;
        for (int b = 1; b < BANDS; b++)
            if (p[b] > p[top]) top = b;
        for (Py_ssize_t g = 0; g < G; g++)
            for (int b = 0; b < BANDS; b++) shift[g][b] = 0.0;
        for (Py_ssize_t k = 0; k < K; k++) {
            double x = X[k * n + i];
            double away = ((isnan(x) ? f[k] : x) - f[k]) / sd[k];
            for (int b = 0; b < BANDS; b++) shift[group[k]][b] += away * (w[b * K + k] * beta);
        }
        for (int b = 0; b < BANDS; b++) logp[b] = log(p[b]);
        for (Py_ssize_t g = 0; g < G; g++) {
            double occluded[BANDS], top_peak = -INFINITY, total = 0.0;
            for (int b = 0; b < BANDS; b++) {
                occluded[b] = logp[b] - shift[g][b];
                top_peak = max_of(top_peak, occluded[b]);
            }
            for (int b = 0; b < BANDS; b++) total += exp(occluded[b] - top_peak);
            F[i * G + g] = (logp[top] - occluded[top]) + (log(total) + top_peak);
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&xt);
    PyBuffer_Release(&fill);
    PyBuffer_Release(&mean);
    PyBuffer_Release(&scale);
    PyBuffer_Release(&coef);
    PyBuffer_Release(&icpt);
    PyBuffer_Release(&groups);
    PyBuffer_Release(&probs);
    PyBuffer_Release(&factors);
    return result;
}

static PyMethodDef methods[] = {
    {"evaluate", evaluate, METH_VARARGS, "Run a program; the values of some registers."},
    {"combine", combine, METH_VARARGS, "Run the rules' program and RULES.md's combining steps."},
    {"features", features, METH_VARARGS, "RULES.md's derived values and the classifier's inputs."},
    {"linear", linear, METH_VARARGS, "The classifier's band probabilities, and attributions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&module); }
