/* core/nn/optimizers_generic.h — the update loops of optimizers.c, written
 * once against T, I and SUF(name) and compiled for float and for double:
 * optimizers.c includes it through generic_real.h (see there).  Not a header;
 * no include guard.   See the top of optimizers.c for the arithmetic
 * conventions (PyTorch's, in T). */

/* torch.lerp's two-sided formula, self + w (end - self), evaluated from
 * the nearer end; and the gradient with PyTorch's L2 weight-decay term
 * (skipped when wd == 0, as there, so that an infinite parameter does not
 * turn into NaN). */
static inline T SUF(lerp)(T self, T end, T w)
{
    return w < (T)0.5 ? self + w * (end - self) : end - (end - self) * ((T)1 - w);
}
static inline T SUF(plus_l2)(T g, T p, T wd)
{
    return wd != 0 ? g + wd * p : g;
}

/* sgd: d = g + wd p; b = d (t == 1) or momentum b + (1 - dampening) d;
 * d = nesterov ? d + momentum b : b; p -= lr d.
 *
 * The optimizer step touches every parameter and is bound by memory
 * bandwidth, so it must stream: the four switches are turned into
 * compile-time constants (one inlined copy of the loop per combination,
 * picked once per step), which leaves a loop without branches that the
 * compiler vectorises.  The head loop runs a multiple of 16 elements (the
 * widest vectorisation factor, 16 floats) so that GCC's -O2 cost model
 * ("vector code must replace all scalar code") accepts it.  The scalars
 * are copied into locals first: read through a pointer they might alias
 * p, which defeats vectorisation. */
typedef struct SUF(sgd_coef) {
    T weight_decay, momentum, keep, neg_lr; /* keep = 1 - dampening */
} SUF(sgd_coef);
static inline __attribute__((always_inline)) void
SUF(sgd_elem)(T *restrict p, T *restrict buf, const T *restrict g, int64_t i, T wdc, T momc,
              T keep, T neg_lr, bool wd, bool mom, bool first, bool nesterov)
{
    T d = g[i];
    if (wd)
        d = d + wdc * p[i];
    if (mom) {
        T b = first ? d : momc * buf[i] + keep * d;
        buf[i] = b;
        d = nesterov ? d + momc * b : b;
    }
    p[i] = p[i] + neg_lr * d;
}
static inline __attribute__((always_inline)) void
SUF(sgd_span)(T *restrict p, T *restrict buf, const T *restrict g, int64_t n,
              const SUF(sgd_coef) *k, bool wd, bool mom, bool first, bool nesterov)
{
    const T wdc = k->weight_decay, momc = k->momentum, keep = k->keep, neg_lr = k->neg_lr;
    int64_t i = 0, head = n & ~(int64_t)15;
    for (; i < head; i++)
        SUF(sgd_elem)(p, buf, g, i, wdc, momc, keep, neg_lr, wd, mom, first, nesterov);
    for (; i < n; i++)
        SUF(sgd_elem)(p, buf, g, i, wdc, momc, keep, neg_lr, wd, mom, first, nesterov);
}
/* One vectorised copy per CPU family: see SL_HOT_CLONES. */
SL_HOT_CLONES static void SUF(sgd_run)(T *restrict p, T *restrict buf, const T *restrict g,
                                       int64_t n, const SUF(sgd_coef) *k, int flags)
{
    /* One case per combination of the flags (bits: wd, momentum, first step,
     * nesterov); each case is a loop without branches. */
    switch (flags) {
    case 0: SUF(sgd_span)(p, buf, g, n, k, false, false, false, false); break;
    case 1: SUF(sgd_span)(p, buf, g, n, k, true, false, false, false); break;
    case 2: SUF(sgd_span)(p, buf, g, n, k, false, true, false, false); break;
    case 3: SUF(sgd_span)(p, buf, g, n, k, true, true, false, false); break;
    case 6: SUF(sgd_span)(p, buf, g, n, k, false, true, true, false); break;
    case 7: SUF(sgd_span)(p, buf, g, n, k, true, true, true, false); break;
    case 10: SUF(sgd_span)(p, buf, g, n, k, false, true, false, true); break;
    case 11: SUF(sgd_span)(p, buf, g, n, k, true, true, false, true); break;
    case 14: SUF(sgd_span)(p, buf, g, n, k, false, true, true, true); break;
    case 15: SUF(sgd_span)(p, buf, g, n, k, true, true, true, true); break;
    }
}
static void SUF(sgd_kernel)(const opt_state *s, const step_coef *c, void *pv, const void *gv,
                            int64_t begin, int64_t end)
{
    const SUF(sgd_coef) k = {(T)s->weight_decay, (T)s->momentum, (T)(1.0 - s->dampening),
                             (T)-c->lr};
    bool mom = s->buf[0] != NULL;
    int flags = (s->weight_decay != 0.0) | mom << 1 | (mom && c->first) << 2 |
                (mom && s->nesterov) << 3;
    T *buf = mom ? (T *)s->buf[0] + begin : NULL;
    SUF(sgd_run)((T *)pv + begin, buf, (const T *)gv + begin, end - begin, &k, flags);
}

/* adam / adamw: p *= 1 - lr wd (adamw) or d = g + wd p (adam);
 * m = lerp(m, d, 1 - beta1); v = beta2 v + (1 - beta2) d^2; vmax = max(vmax, v);
 * p -= step_size m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps). */
static void SUF(adam_kernel)(const opt_state *s, const step_coef *c, void *pv, const void *gv,
                             int64_t begin, int64_t end)
{
    T *p = pv, *m = s->buf[0], *v = s->buf[1], *vmax = s->buf[2];
    const T *g = gv;
    const T decay = (T)c->decay, wd = (T)s->weight_decay, beta2 = (T)s->beta2,
            one_m_beta1 = (T)(1.0 - s->beta1), one_m_beta2 = (T)(1.0 - s->beta2),
            bc2_sqrt = (T)c->bc2_sqrt, eps = (T)s->eps, neg_step = (T)-c->step_size;
    for (int64_t i = begin; i < end; i++) {
        T pi = p[i], d = g[i];
        if (s->decoupled)
            pi *= decay;
        else
            d = SUF(plus_l2)(d, pi, wd);
        T mi = SUF(lerp)(m[i], d, one_m_beta1);
        T vi = v[i] * beta2 + one_m_beta2 * d * d;
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
            vi = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vi;
        }
        T denom = (T)sqrt(vi) / bc2_sqrt + eps;
        p[i] = pi + neg_step * mi / denom;
    }
}

/* adagrad: d = g + wd p; sum += d^2; p -= clr d / (sqrt(sum) + eps). */
static void SUF(adagrad_kernel)(const opt_state *s, const step_coef *c, void *pv, const void *gv,
                                int64_t begin, int64_t end)
{
    T *p = pv, *sum = s->buf[0];
    const T *g = gv;
    const T wd = (T)s->weight_decay, eps = (T)s->eps, neg_clr = (T)-c->clr;
    for (int64_t i = begin; i < end; i++) {
        T d = SUF(plus_l2)(g[i], p[i], wd);
        T si = sum[i] + d * d;
        sum[i] = si;
        p[i] = p[i] + neg_clr * d / ((T)sqrt(si) + eps);
    }
}

/* rmsprop: d = g + wd p; sq = alpha sq + (1 - alpha) d^2;
 * avg = sqrt(sq - ga^2) with ga = lerp(ga, d, 1 - alpha) (centered) or
 * sqrt(sq), plus eps; b = momentum b + d / avg, p -= lr b (momentum > 0)
 * or p -= lr d / avg. */
static void SUF(rmsprop_kernel)(const opt_state *s, const step_coef *c, void *pv, const void *gv,
                                int64_t begin, int64_t end)
{
    T *p = pv, *sq = s->buf[0], *ga = s->buf[1], *mb = s->buf[2];
    const T *g = gv;
    const T wd = (T)s->weight_decay, alpha = (T)s->alpha, one_m_alpha = (T)(1.0 - s->alpha),
            eps = (T)s->eps, momentum = (T)s->momentum, neg_lr = (T)-c->lr;
    for (int64_t i = begin; i < end; i++) {
        T d = SUF(plus_l2)(g[i], p[i], wd);
        T sqi = sq[i] * alpha + one_m_alpha * d * d;
        sq[i] = sqi;
        T avg = sqi;
        if (ga) {
            T gi = SUF(lerp)(ga[i], d, one_m_alpha);
            ga[i] = gi;
            avg -= gi * gi;
        }
        avg = (T)sqrt(avg) + eps;
        if (mb) {
            T b = mb[i] * momentum + d / avg;
            mb[i] = b;
            p[i] = p[i] + neg_lr * b;
        } else {
            p[i] = p[i] + neg_lr * d / avg;
        }
    }
}
