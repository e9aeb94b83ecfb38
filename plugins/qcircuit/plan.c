/* plugins/qcircuit/plan.c — fusing a circuit into few passes over rho.
 *
 * A pass costs one sweep over 16 * 4^n bytes whatever it does, so the plan
 * makes as few as it can without changing the result:
 *   - a 1-qubit op (gate or channel) on q joins the latest 2-qubit pass that
 *     touches q if no later pass touches q (it commutes with everything in
 *     between, which acts on other qubits), else waits in q's pending list;
 *   - a 2-qubit op on (a, b) joins the latest pass if that pass is on the
 *     same pair and still the latest on both; otherwise it starts a pass
 *     that first applies a's and b's pending ops;
 *   - a rotation on 3+ qubits is a pass of its own (pending ops on its
 *     qubits are flushed first);
 *   - at the end, pending ops become 1-qubit passes.
 * For the hardware-efficient ansatz with noise after every gate this gives
 * n - 1 passes per layer (each CNOT with everything around it) plus n at
 * the end, instead of ~5n per layer unfused.
 *
 * Passes are then grouped into stages (group(), below): passes whose qubits
 * fit one tile (density.c) share one sweep over rho.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

typedef struct ilist {
    int *v;
    int n, cap;
} ilist;

static int ilist_push(ilist *l, int x)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        int *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return sl_error(SL_ENOMEM, "qcircuit: out of memory building the plan");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return SL_OK;
}

/* A pass under construction: its items and slots interleaved in one list. */
typedef struct bpass {
    int k, q[2];
    ilist items; /* op index, slot, op index, slot, ... */
} bpass;

typedef struct builder {
    const qc_circuit *c;
    bpass *passes;
    int npasses, cap;
    ilist pending[QC_MAX_QUBITS];
    int open2[QC_MAX_QUBITS]; /* latest 2-qubit pass on q if nothing later touched q */
} builder;

static int new_pass(builder *b, int k, int q0, int q1)
{
    if (b->npasses == b->cap) {
        int cap = b->cap ? 2 * b->cap : 32;
        bpass *p = realloc(b->passes, (size_t)cap * sizeof *p);
        if (!p)
            return sl_error(SL_ENOMEM, "qcircuit: out of memory building the plan");
        b->passes = p;
        b->cap = cap;
    }
    b->passes[b->npasses] = (bpass){.k = k, .q = {q0, q1}};
    return b->npasses++;
}

static int add_item(builder *b, int pass, int op, int slot)
{
    SL_TRY(ilist_push(&b->passes[pass].items, op));
    return ilist_push(&b->passes[pass].items, slot);
}

/* Moves q's pending ops into the open pass on q, or into a new 1-qubit pass. */
static int flush(builder *b, int q)
{
    if (b->pending[q].n == 0)
        return SL_OK;
    int pass = b->open2[q], slot = 0;
    if (pass >= 0)
        slot = b->passes[pass].q[0] == q ? 0 : 1;
    else
        SL_TRY(pass = new_pass(b, 1, q, -1));
    for (int i = 0; i < b->pending[q].n; i++)
        SL_TRY(add_item(b, pass, b->pending[q].v[i], slot));
    b->pending[q].n = 0;
    return SL_OK;
}

static int add_one_qubit(builder *b, int i, int q)
{
    int pass = b->open2[q];
    if (pass < 0)
        return ilist_push(&b->pending[q], i);
    return add_item(b, pass, i, b->passes[pass].q[0] == q ? 0 : 1);
}

/* slot 2: the op's qubit order is the pass's; slot 3: swapped. */
static int add_two_qubit(builder *b, int i, int qa, int qb)
{
    int pass = b->open2[qa];
    if (pass < 0 || pass != b->open2[qb] || b->pending[qa].n || b->pending[qb].n) {
        SL_TRY(pass = new_pass(b, 2, qa, qb));
        for (int j = 0; j < b->pending[qa].n; j++)
            SL_TRY(add_item(b, pass, b->pending[qa].v[j], 0));
        for (int j = 0; j < b->pending[qb].n; j++)
            SL_TRY(add_item(b, pass, b->pending[qb].v[j], 1));
        b->pending[qa].n = b->pending[qb].n = 0;
        b->open2[qa] = b->open2[qb] = pass;
    }
    return add_item(b, pass, i, b->passes[pass].q[0] == qa ? 2 : 3);
}

static int add_heavy(builder *b, int i)
{
    const qc_op *op = &b->c->ops[i];
    uint64_t support = op->x | op->z;
    for (int q = 0; q < b->c->n; q++)
        if (support >> q & 1)
            SL_TRY(flush(b, q));
    int pass;
    SL_TRY(pass = new_pass(b, 0, -1, -1));
    for (int q = 0; q < b->c->n; q++)
        if (support >> q & 1)
            b->open2[q] = -1;
    return add_item(b, pass, i, 0);
}

static int build(builder *b)
{
    const qc_circuit *c = b->c;
    for (int i = 0; i < c->nops; i++) {
        const qc_op *op = &c->ops[i];
        if (op->kind == QC_LAYER)
            continue;
        if (op->nq == 1)
            SL_TRY(add_one_qubit(b, i, op->q[0]));
        else if (op->nq == 2)
            SL_TRY(add_two_qubit(b, i, op->q[0], op->q[1]));
        else
            SL_TRY(add_heavy(b, i));
    }
    for (int q = 0; q < c->n; q++)
        SL_TRY(flush(b, q));
    return SL_OK;
}

/* Flattens the passes into the plan's arrays. */
static int flatten(const builder *b, qc_plan *p)
{
    int nitems = 0;
    for (int i = 0; i < b->npasses; i++)
        nitems += b->passes[i].items.n / 2;
    p->passes = malloc((size_t)(b->npasses + 1) * sizeof *p->passes);
    p->items = malloc((size_t)(nitems + 1) * sizeof *p->items);
    p->slot = malloc((size_t)(nitems + 1) * sizeof *p->slot);
    if (!p->passes || !p->items || !p->slot)
        return sl_error(SL_ENOMEM, "qcircuit: out of memory building the plan");
    int at = 0;
    for (int i = 0; i < b->npasses; i++) {
        const bpass *bp = &b->passes[i];
        p->passes[i] = (qc_pass){.k = bp->k, .q = {bp->q[0], bp->q[1]}, .first = at,
                                 .count = bp->items.n / 2};
        for (int j = 0; j < bp->items.n; j += 2) {
            p->items[at] = bp->items.v[j];
            p->slot[at] = bp->items.v[j + 1];
            at++;
        }
    }
    p->npasses = b->npasses;
    p->nitems = nitems;
    return SL_OK;
}

static uint64_t pass_support(const qc_circuit *c, const qc_plan *p, int i)
{
    const qc_pass *ps = &p->passes[i];
    if (ps->k == 0) {
        const qc_op *op = &c->ops[p->items[ps->first]];
        return op->x | op->z;
    }
    uint64_t s = (uint64_t)1 << ps->q[0];
    return ps->k > 1 ? s | (uint64_t)1 << ps->q[1] : s;
}

/* Stages, greedily: from the first pass not yet placed, scan forward and
 * take every pass that fits the tile with the qubits taken so far and
 * touches no qubit of a pass left behind in this scan (it then commutes
 * with all of those, so moving it ahead changes only rounding).  A heavy
 * rotation is a stage of its own. */
static int group(const qc_circuit *c, qc_plan *p)
{
    const int n = c->n, m = qc_tile_qubits(n), np = p->npasses;
    const uint64_t all = ((uint64_t)1 << n) - 1;
    p->stages = malloc((size_t)(np + 1) * sizeof *p->stages);
    p->order = malloc((size_t)(np + 1) * sizeof *p->order);
    bool *done = calloc((size_t)np + 1, sizeof *done);
    if (!p->stages || !p->order || !done) {
        free(done);
        return sl_error(SL_ENOMEM, "qcircuit: out of memory building the plan");
    }
    int at = 0, next = 0;
    p->nstages = 0;
    while (next < np) {
        qc_stage st = {.first = at, .count = 0};
        if (p->passes[next].k == 0) {
            done[next] = true;
            p->order[at++] = next;
            st.count = 1;
        } else {
            uint64_t set = m < n ? 7 : all, blocked = 0;
            for (int i = next; i < np && st.count < QC_STAGE_MAX_PASSES && blocked != all; i++) {
                if (done[i])
                    continue;
                uint64_t sup = pass_support(c, p, i);
                if (p->passes[i].k == 0 || (sup & blocked) ||
                    __builtin_popcountll(set | sup) > m) {
                    blocked |= sup;
                    continue;
                }
                set |= sup;
                done[i] = true;
                p->order[at++] = i;
                st.count++;
            }
        }
        p->stages[p->nstages++] = st;
        while (next < np && done[next])
            next++;
    }
    free(done);
    return SL_OK;
}

int qc_plan_build(const qc_circuit *c, qc_plan *p)
{
    memset(p, 0, sizeof *p);
    builder b = {.c = c};
    for (int q = 0; q < QC_MAX_QUBITS; q++)
        b.open2[q] = -1;
    int rc = build(&b);
    if (rc == SL_OK)
        rc = flatten(&b, p);
    if (rc == SL_OK)
        rc = group(c, p);
    for (int i = 0; i < b.npasses; i++)
        free(b.passes[i].items.v);
    free(b.passes);
    for (int q = 0; q < QC_MAX_QUBITS; q++)
        free(b.pending[q].v);
    if (rc != SL_OK)
        qc_plan_free(p);
    return rc;
}

void qc_plan_free(qc_plan *p)
{
    free(p->passes);
    free(p->items);
    free(p->slot);
    free(p->stages);
    free(p->order);
    memset(p, 0, sizeof *p);
}
