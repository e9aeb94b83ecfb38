/* core/generic_real.h — compiles one generic source for float and for double.
 *
 * Not an ordinary header (no include guard, on purpose).  A file that
 * defines SL_GENERIC_FILE as the name of a source written against
 *   T          the element type,
 *   I          the signed integer type of T's width (vector-extension lane
 *              masks), and
 *   SUF(name)  name with T's suffix (add_rows -> add_rows_f32, add_rows_f64)
 * and then includes this file gets that source twice, with T = float and
 * with T = double; T, I, SUF and SL_GENERIC_FILE are undefined afterwards.
 * The generic source is ordinary C, so compiler messages and debuggers
 * point into its own lines, which a kernel written inside a multi-line
 * macro does not allow (Torch7's THGenerateFloatTypes.h works this way).
 * The name is resolved like any quoted include: relative to this directory
 * or the -I path, e.g. "nn/pool_generic.h". */
#ifndef SL_GENERIC_FILE
#error "define SL_GENERIC_FILE before including generic_real.h"
#endif

#define T float
#define I int32_t
#define SUF(name) name##_f32
#include SL_GENERIC_FILE
#undef T
#undef I
#undef SUF

#define T double
#define I int64_t
#define SUF(name) name##_f64
#include SL_GENERIC_FILE
#undef T
#undef I
#undef SUF

#undef SL_GENERIC_FILE
