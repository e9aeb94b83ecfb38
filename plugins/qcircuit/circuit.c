/* plugins/qcircuit/circuit.c — a circuit: a gate list and its parameters.
 *
 * Text format (docs/quantum.md): statements separated by newlines or ';',
 * '#' starts a comment, words separated by blanks.
 *
 *   h Q | s Q | x Q | y Q | z Q           fixed 1-qubit gates
 *   cnot C T (or cx) | cz A B             fixed 2-qubit gates
 *   rx Q | ry Q | rz Q  [pK]              rotation by a new parameter, or by theta[K]
 *   rp PAULIS Q1 Q2 ... [pK]              exp(-i theta P / 2), P = PAULIS on Q1 Q2 ...
 *   layer                                 end of a layer (per-layer noise goes here)
 *   amplitude_damping Q G | depolarizing Q P | dephasing Q P     explicit channels
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

void qc_circuit_init(qc_circuit *c, int n)
{
    memset(c, 0, sizeof *c);
    c->n = n;
}

void qc_circuit_free(qc_circuit *c)
{
    free(c->ops);
    memset(c, 0, sizeof *c);
}

int qc_circuit_push(qc_circuit *c, const qc_op *op)
{
    if (c->nops == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        qc_op *ops = realloc(c->ops, (size_t)cap * sizeof *ops);
        if (!ops)
            return sl_error(SL_ENOMEM, "qcircuit: out of memory for the gate list");
        c->ops = ops;
        c->cap = cap;
    }
    c->ops[c->nops++] = *op;
    if (qc_kind_is_rotation(op->kind) && op->param >= c->nparams)
        c->nparams = op->param + 1;
    return SL_OK;
}

static int check_qubit(const qc_circuit *c, int q)
{
    if (q < 0 || q >= c->n)
        return sl_error(SL_EINVAL, "qcircuit: qubit %d out of range [0, %d)", q, c->n);
    return SL_OK;
}

int qc_circuit_gate(qc_circuit *c, qc_kind kind, int q0, int q1)
{
    bool two = kind == QC_CNOT || kind == QC_CZ;
    SL_TRY(check_qubit(c, q0));
    if (two) {
        SL_TRY(check_qubit(c, q1));
        if (q0 == q1)
            return sl_error(SL_EINVAL, "qcircuit: %s needs two distinct qubits, got %d twice",
                            qc_kind_name(kind), q0);
    }
    qc_op op = {.kind = kind, .nq = two ? 2 : 1, .q = {q0, two ? q1 : -1}, .param = -1};
    return qc_circuit_push(c, &op);
}

int qc_circuit_rot_param(qc_circuit *c, qc_kind kind, uint64_t x, uint64_t z, int param,
                         double weight)
{
    uint64_t support = x | z;
    if (support == 0 || (c->n < 64 && support >> c->n))
        return sl_error(SL_EINVAL, "qcircuit: rotation string outside the %d qubits", c->n);
    if (param < 0)
        return sl_error(SL_EINVAL, "qcircuit: negative parameter index %d", param);
    qc_op op = {.kind = kind, .nq = __builtin_popcountll(support), .q = {-1, -1}, .x = x,
                .z = z, .param = param, .weight = weight};
    int j = 0;
    for (int q = 0; q < c->n && j < 2; q++)
        if (support >> q & 1)
            op.q[j++] = q;
    return qc_circuit_push(c, &op);
}

int qc_circuit_rot(qc_circuit *c, qc_kind kind, int q)
{
    SL_TRY(check_qubit(c, q));
    uint64_t b = (uint64_t)1 << q;
    uint64_t x = kind == QC_RZ ? 0 : b, z = kind == QC_RX ? 0 : b;
    return qc_circuit_rot_param(c, kind, x, z, c->nparams, 1.0);
}

int qc_circuit_channel(qc_circuit *c, qc_channel ch, double p, int q)
{
    SL_TRY(check_qubit(c, q));
    double complex k[16];
    int count;
    SL_TRY(qc_channel_kraus(ch, p, k, &count)); /* validates p */
    qc_op op = {.kind = QC_CHANNEL, .nq = 1, .q = {q, -1}, .param = -1, .channel = ch,
                .strength = p};
    return qc_circuit_push(c, &op);
}

int qc_circuit_kraus(qc_circuit *c, int q0, int q1, int nkraus, const double complex *k)
{
    SL_TRY(check_qubit(c, q0));
    int nq = q1 < 0 ? 1 : 2;
    if (nq == 2) {
        SL_TRY(check_qubit(c, q1));
        if (q1 == q0)
            return sl_error(SL_EINVAL, "qcircuit: a 2-qubit Kraus map needs distinct qubits");
    }
    double complex s[256];
    SL_TRY(qc_super_from_kraus(nq, nkraus, k, s)); /* validates the operators */
    qc_op op = {.kind = QC_CHANNEL, .nq = nq, .q = {q0, q1}, .param = -1,
                .channel = QC_CH_KRAUS, .kraus = k, .nkraus = nkraus};
    return qc_circuit_push(c, &op);
}

/* ---- parsing ------------------------------------------------------------------ */

#define MAX_WORDS 70

typedef struct stmt {
    int line;
    int nwords;
    char *word[MAX_WORDS];
} stmt;

static int parse_int(const stmt *s, int i, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s->word[i], &end, 10);
    if (*end || errno || v < -1000000 || v > 1000000)
        return sl_error(SL_EINVAL, "qcircuit: circuit line %d: '%s' is not an integer", s->line,
                        s->word[i]);
    *out = (int)v;
    return SL_OK;
}

static int parse_double(const stmt *s, int i, double *out)
{
    char *end;
    *out = strtod(s->word[i], &end);
    if (*end || end == s->word[i] || !isfinite(*out))
        return sl_error(SL_EINVAL, "qcircuit: circuit line %d: '%s' is not a finite number",
                        s->line, s->word[i]);
    return SL_OK;
}

static int want_words(const stmt *s, int lo, int hi)
{
    if (s->nwords < lo || s->nwords > hi)
        return sl_error(SL_EINVAL, "qcircuit: circuit line %d: '%s' takes %d to %d arguments, got %d",
                        s->line, s->word[0], lo - 1, hi - 1, s->nwords - 1);
    return SL_OK;
}

/* A trailing "pK" names the parameter; otherwise the next new one. */
static int rotation_param(const qc_circuit *c, stmt *s, int *param)
{
    *param = c->nparams;
    const char *last = s->word[s->nwords - 1];
    if (s->nwords > 2 && last[0] == 'p' && isdigit((unsigned char)last[1])) {
        char *end;
        long v = strtol(last + 1, &end, 10);
        if (*end || v > 1000000)
            return sl_error(SL_EINVAL, "qcircuit: circuit line %d: bad parameter '%s'", s->line,
                            last);
        *param = (int)v;
        s->nwords--;
    }
    return SL_OK;
}

static int parse_rp(qc_circuit *c, stmt *s)
{
    int param;
    SL_TRY(rotation_param(c, s, &param));
    if (s->nwords < 3)
        return sl_error(SL_EINVAL, "qcircuit: circuit line %d: rp needs a Pauli string and qubits",
                        s->line);
    const char *letters = s->word[1];
    if ((int)strlen(letters) != s->nwords - 2)
        return sl_error(SL_EINVAL, "qcircuit: circuit line %d: rp '%s' names %zu qubits, got %d",
                        s->line, letters, strlen(letters), s->nwords - 2);
    uint64_t x = 0, z = 0;
    for (int i = 0; letters[i]; i++) {
        int q;
        SL_TRY(parse_int(s, i + 2, &q));
        SL_TRY(check_qubit(c, q));
        uint64_t b = (uint64_t)1 << q;
        if ((x | z) & b)
            return sl_error(SL_EINVAL, "qcircuit: circuit line %d: qubit %d repeated", s->line, q);
        switch (toupper((unsigned char)letters[i])) {
        case 'X': x |= b; break;
        case 'Y': x |= b; z |= b; break;
        case 'Z': z |= b; break;
        case 'I': break;
        default:
            return sl_error(SL_EINVAL, "qcircuit: circuit line %d: '%c' is not a Pauli letter",
                            s->line, letters[i]);
        }
    }
    return qc_circuit_rot_param(c, QC_RP, x, z, param, 1.0);
}

static int parse_stmt(qc_circuit *c, stmt *s)
{
    static const struct { const char *name; qc_kind kind; } fixed[] = {
        {"h", QC_H}, {"s", QC_S}, {"x", QC_X}, {"y", QC_Y}, {"z", QC_Z},
        {"cnot", QC_CNOT}, {"cx", QC_CNOT}, {"cz", QC_CZ}};
    const char *w = s->word[0];
    int q0, q1;
    for (unsigned i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(w, fixed[i].name) == 0) {
            bool two = fixed[i].kind == QC_CNOT || fixed[i].kind == QC_CZ;
            SL_TRY(want_words(s, two ? 3 : 2, two ? 3 : 2));
            SL_TRY(parse_int(s, 1, &q0));
            q1 = -1;
            if (two)
                SL_TRY(parse_int(s, 2, &q1));
            return qc_circuit_gate(c, fixed[i].kind, q0, q1);
        }
    if (strcmp(w, "rx") == 0 || strcmp(w, "ry") == 0 || strcmp(w, "rz") == 0) {
        int param;
        SL_TRY(rotation_param(c, s, &param));
        SL_TRY(want_words(s, 2, 2));
        SL_TRY(parse_int(s, 1, &q0));
        SL_TRY(check_qubit(c, q0));
        qc_kind kind = w[1] == 'x' ? QC_RX : w[1] == 'y' ? QC_RY : QC_RZ;
        uint64_t b = (uint64_t)1 << q0;
        return qc_circuit_rot_param(c, kind, kind == QC_RZ ? 0 : b, kind == QC_RX ? 0 : b,
                                    param, 1.0);
    }
    if (strcmp(w, "rp") == 0)
        return parse_rp(c, s);
    if (strcmp(w, "layer") == 0) {
        SL_TRY(want_words(s, 1, 1));
        qc_op op = {.kind = QC_LAYER, .param = -1, .q = {-1, -1}};
        return qc_circuit_push(c, &op);
    }
    qc_channel ch;
    if (strcmp(w, "kraus") != 0 && strcmp(w, "none") != 0 && qc_channel_parse(w, &ch) == SL_OK) {
        double p;
        SL_TRY(want_words(s, 3, 3));
        SL_TRY(parse_int(s, 1, &q0));
        SL_TRY(parse_double(s, 2, &p));
        return sl_error_context(qc_circuit_channel(c, ch, p, q0), "circuit line %d", s->line);
    }
    return sl_error(SL_EINVAL, "qcircuit: circuit line %d: unknown statement '%s'", s->line, w);
}

int qc_circuit_parse(qc_circuit *c, const char *text)
{
    char *buf = strdup(text);
    if (!buf)
        return sl_error(SL_ENOMEM, "qcircuit: out of memory parsing the circuit");
    int rc = SL_OK, line = 1;
    char *p = buf;
    while (*p && rc == SL_OK) {
        stmt s = {.line = line};
        /* One statement: words up to ';', newline or the end; skip comments. */
        while (*p && *p != ';' && *p != '\n') {
            if (*p == '#') {
                while (*p && *p != '\n')
                    p++;
                break;
            }
            if (isspace((unsigned char)*p)) {
                *p++ = '\0';
                continue;
            }
            if (s.nwords == MAX_WORDS) {
                rc = sl_error(SL_EINVAL, "qcircuit: circuit line %d: too many words", line);
                break;
            }
            s.word[s.nwords++] = p;
            while (*p && !isspace((unsigned char)*p) && *p != ';' && *p != '#')
                p++;
        }
        if (*p == '\n')
            line++;
        if (*p)
            *p++ = '\0';
        if (rc == SL_OK && s.nwords > 0)
            rc = parse_stmt(c, &s);
    }
    free(buf);
    return rc;
}

/* ---- noise ---------------------------------------------------------------------- */

static int noise_on_support(qc_circuit *dst, qc_channel ch, double p, uint64_t support)
{
    for (int q = 0; q < dst->n; q++)
        if (support >> q & 1)
            SL_TRY(qc_circuit_channel(dst, ch, p, q));
    return SL_OK;
}

static uint64_t op_support(const qc_op *op)
{
    if (qc_kind_is_rotation(op->kind))
        return op->x | op->z;
    uint64_t s = 0;
    for (int j = 0; j < op->nq && j < 2; j++)
        s |= (uint64_t)1 << op->q[j];
    return s;
}

int qc_circuit_with_noise(const qc_circuit *src, qc_channel ch, double p, bool per_layer,
                          qc_circuit *dst)
{
    qc_circuit_init(dst, src->n);
    const uint64_t all = src->n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << src->n) - 1;
    int rc = SL_OK;
    for (int i = 0; i < src->nops && rc == SL_OK; i++) {
        const qc_op *op = &src->ops[i];
        rc = qc_circuit_push(dst, op);
        if (rc != SL_OK || ch == QC_CH_NONE)
            continue;
        if (!per_layer && op->kind != QC_CHANNEL && op->kind != QC_LAYER)
            rc = noise_on_support(dst, ch, p, op_support(op));
        else if (per_layer && op->kind == QC_LAYER)
            rc = noise_on_support(dst, ch, p, all);
    }
    if (rc == SL_OK && per_layer && ch != QC_CH_NONE &&
        (src->nops == 0 || src->ops[src->nops - 1].kind != QC_LAYER))
        rc = noise_on_support(dst, ch, p, all);
    dst->nparams = src->nparams > dst->nparams ? src->nparams : dst->nparams;
    if (rc != SL_OK)
        qc_circuit_free(dst);
    return rc;
}
