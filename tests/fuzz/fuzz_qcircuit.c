/* Fuzz harness: the quantum circuit, observable and MaxCut edge parsers of
 * the qcircuit plugin.  Input: one byte choosing the parser and the qubit
 * count (1..4), then the text. */
#include "config.h"

#include "qc.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int n = 1 + (data[0] >> 2) % 4;
    char *text = fuzz_text(data + 1, size - 1);
    int rc;
    if ((data[0] & 3) == 0) {
        qc_circuit c;
        qc_circuit_init(&c, n);
        rc = qc_circuit_parse(&c, text);
        qc_circuit_free(&c);
    } else {
        qc_observable o;
        qc_obs_init(&o, n);
        rc = (data[0] & 3) == 1 ? qc_obs_parse(&o, text) : qc_obs_maxcut(&o, text);
        qc_obs_free(&o);
    }
    fuzz_check_message(rc);
    free(text);
    return 0;
}
