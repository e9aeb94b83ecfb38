/* A shared object that is not a symlab plugin: no sl_plugin_entry. */
#include "config.h"

#include <symlab/export.h>

SL_API int not_a_plugin(void);
SL_API int not_a_plugin(void) { return 42; }
