/* core/nn/activations_generic.h — the activation kernels of activations.c,
 * written once against T, I and SUF(name) and compiled for float and for
 * double: activations.c includes it through generic_real.h (see there).  Not
 * a header; no include guard.  */

/* y = f(x) and gx = gy f'(x, y) in double for every element.  Inlined into
 * each activation's kernels below with its f and f' (compile-time constants
 * there), so each gets its own loop with f inlined and no indirect call. */
static inline __attribute__((always_inline)) void
SUF(map_forward)(const void *xv, void *yv, int64_t n, double a, double (*f)(double x, double a))
{
    const T *restrict xs = xv;
    T *restrict ys = yv;
    for (int64_t i = 0; i < n; i++) {
        double x = xs[i];
        ys[i] = (T)f(x, a);
    }
}
static inline __attribute__((always_inline)) void
SUF(map_backward)(const void *xv, const void *yv, const void *gyv, void *gxv, int64_t n,
                  double a, double (*df)(double x, double y, double a))
{
    const T *restrict xs = xv, *restrict ys = yv, *restrict gy = gyv;
    T *restrict gx = gxv;
    for (int64_t i = 0; i < n; i++) {
        double x = xs[i], y = ys[i];
        gx[i] = (T)(gy[i] * df(x, y, a));
    }
}

/* relu is most of what a ReLU net spends outside its GEMMs, so it gets
 * hand-written kernels: the signs of activations are random, and the
 * branch the compiler emitted for the plain expression mispredicted so often
 * that this pass cost a tenth of a training step.  Here one SSE register
 * (16 bytes) of elements at a time is masked with a comparison (GCC/Clang
 * vector extensions; no branch, no conversion; 32-byte vectors are split
 * badly without AVX).  Same results bit for bit as the scalar tail:
 * y = x < 0 ? 0 : x (NaN and -0 pass through), gx = gy * (x > 0 ? 1 : 0)
 * (gy * 0 rather than 0 keeps a NaN or infinite gradient visible). */
typedef T SUF(relu_vec) __attribute__((vector_size(16)));
typedef I SUF(relu_mask) __attribute__((vector_size(16)));
static void SUF(relu_forward)(const void *xv, void *yv, int64_t n, double a)
{
    const T *xs = xv;
    T *ys = yv;
    const SUF(relu_vec) zero = {0};
    const int64_t w = (int64_t)(sizeof zero / sizeof(T));
    int64_t i = 0;
    for (; i + w <= n; i += w) {
        SUF(relu_vec) x;
        memcpy(&x, xs + i, sizeof x);
        x = (SUF(relu_vec))((SUF(relu_mask))x & ~(x < zero));
        memcpy(ys + i, &x, sizeof x);
    }
    for (; i < n; i++)
        ys[i] = xs[i] < 0 ? 0 : xs[i];
    (void)a;
}
static void SUF(relu_backward)(const void *xv, const void *yv, const void *gyv, void *gxv,
                               int64_t n, double a)
{
    const T *xs = xv, *gy = gyv;
    T *gx = gxv;
    const SUF(relu_vec) zero = {0}, one = zero + 1;
    const int64_t w = (int64_t)(sizeof zero / sizeof(T));
    int64_t i = 0;
    for (; i + w <= n; i += w) {
        SUF(relu_vec) x, g;
        memcpy(&x, xs + i, sizeof x);
        memcpy(&g, gy + i, sizeof g);
        g *= (SUF(relu_vec))((SUF(relu_mask))one & (x > zero));
        memcpy(gx + i, &g, sizeof g);
    }
    for (; i < n; i++)
        gx[i] = gy[i] * (T)(xs[i] > 0);
    (void)yv, (void)a;
}

static void SUF(leaky_relu_forward)(const void *xv, void *yv, int64_t n, double a)
{
    SUF(map_forward)(xv, yv, n, a, leaky_relu_value);
}
static void SUF(leaky_relu_backward)(const void *xv, const void *yv, const void *gyv, void *gxv,
                                     int64_t n, double a)
{
    SUF(map_backward)(xv, yv, gyv, gxv, n, a, leaky_relu_deriv);
}
static void SUF(tanh_forward)(const void *xv, void *yv, int64_t n, double a)
{
    SUF(map_forward)(xv, yv, n, a, tanh_value);
}
static void SUF(tanh_backward)(const void *xv, const void *yv, const void *gyv, void *gxv,
                               int64_t n, double a)
{
    SUF(map_backward)(xv, yv, gyv, gxv, n, a, tanh_deriv);
}
static void SUF(sigmoid_forward)(const void *xv, void *yv, int64_t n, double a)
{
    SUF(map_forward)(xv, yv, n, a, sigmoid_value);
}
static void SUF(sigmoid_backward)(const void *xv, const void *yv, const void *gyv, void *gxv,
                                  int64_t n, double a)
{
    SUF(map_backward)(xv, yv, gyv, gxv, n, a, sigmoid_deriv);
}
static void SUF(gelu_forward)(const void *xv, void *yv, int64_t n, double a)
{
    SUF(map_forward)(xv, yv, n, a, gelu_value);
}
static void SUF(gelu_backward)(const void *xv, const void *yv, const void *gyv, void *gxv,
                               int64_t n, double a)
{
    SUF(map_backward)(xv, yv, gyv, gxv, n, a, gelu_deriv);
}

/* identity: exact in T, so no detour through double. */
static void SUF(identity_forward)(const void *xv, void *yv, int64_t n, double a)
{
    const T *restrict xs = xv;
    T *restrict ys = yv;
    for (int64_t i = 0; i < n; i++)
        ys[i] = xs[i];
}
static void SUF(identity_backward)(const void *xv, const void *yv, const void *gyv, void *gxv,
                                   int64_t n, double a)
{
    const T *restrict gy = gyv;
    T *restrict gx = gxv;
    for (int64_t i = 0; i < n; i++)
        gx[i] = gy[i] * 1;
}
