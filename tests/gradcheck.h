/* tests/gradcheck.h — finite-difference gradient checks for module and loss
 * types, shared by the Check suites and by plugin tests.
 *
 * A module check builds a one-module f64 model, draws an input x and an
 * upstream gradient G, and compares the analytic gradients of the scalar
 * L = sum(G * module(x)) — one backward(), through the type's own callbacks
 * so that grad_in is checked too — with central differences
 * (L(v + h) - L(v - h)) / 2h, h = GRADCHECK_STEP, for every input element
 * and every parameter element.  The error of one element is
 * |a - n| / max(|a|, |n|, GRADCHECK_FLOOR); the report holds the largest.
 *
 * Along the way it also checks the module conventions of module.h:
 * backward overwrites grad_in (it is pre-filled with NaN), ADDS into the
 * parameter gradients (a second backward, with grad_in NULL, must double
 * them), and leaves parameter gradients correct when grad_in is NULL.
 * A violation counts as an infinite error.
 *
 * Each check prints one line to stdout:
 *   gradcheck linear: max rel err 3.1e-10 over 140 inputs, 210 params
 */
#ifndef SYMLAB_TESTS_GRADCHECK_H
#define SYMLAB_TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/symlab.h>

#define GRADCHECK_STEP 1e-6
#define GRADCHECK_FLOOR 1e-3 /* gradients below this are compared absolutely */
#define GRADCHECK_TOL 1e-6   /* what the suites accept */

/* What to check.  Zero-initialise, then fill in. */
typedef struct gradcheck_args {
    const char *type;             /* module type name, e.g. "conv2d" */
    const sl_options *opt;        /* its options; NULL for the defaults */
    int ndim;                     /* input shape, batch first */
    int64_t shape[SL_MAX_DIMS];
    uint64_t seed;                /* parameters, input and G all derive from it */
    const char *label;            /* printed after "gradcheck "; NULL: the type name */
    bool eval;                    /* run the model in evaluation mode */
    double jitter;                /* adds U(-jitter, jitter) to every parameter after
                                     initialisation (e.g. so layernorm's weight is not 1) */
    /* Containers: fills the (empty, f64) model with ONE top-level module
     * (a residual or sequential with its children) instead of adding
     * `type`, which then only labels the check.  NULL for a plain type. */
    int (*build)(sl_model *m);
} gradcheck_args;

typedef struct gradcheck_report {
    double max_rel_err; /* +inf if a convention was violated or a value was not finite */
    int64_t ninputs;    /* input elements checked */
    int64_t nparams;    /* parameter elements checked */
} gradcheck_report;

/* Runs the check and prints its line.  Returns a negative status only if
 * the check could not run (unknown type, bad options, a failing call); the
 * caller compares report->max_rel_err with its tolerance. */
int gradcheck_module(const gradcheck_args *args, gradcheck_report *report);

/* The same for the loss type `loss` at pred (f64, contiguous) against
 * target: d loss / d pred from the loss's grad_pred (pre-filled with NaN)
 * against central differences.  `label` may be NULL. */
int gradcheck_loss(const char *loss, const sl_tensor *pred, const sl_tensor *target,
                   const char *label, gradcheck_report *report);

/* Fills a real tensor with U(-1, 1) values kept away from the kinks of
 * relu-like functions (|x| >= 1e-3) and, for up to 4096 elements, from ties
 * between elements (pairwise distance >= 1e-4), so that max pooling and
 * relu are differentiable at the point and within GRADCHECK_STEP of it. */
void gradcheck_fill(sl_tensor *t, sl_rng *rng);

#endif
