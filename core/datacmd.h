/* core/datacmd.h — `symlab data ...`: the dataset catalog on the command line. */
#ifndef SYMLAB_CORE_DATACMD_H
#define SYMLAB_CORE_DATACMD_H

/* Runs `symlab data list|get NAME...|root`; argv[0] is "data".  Returns the
 * exit status (0, 1 on failure, 2 for a bad command line). */
int symlab_cmd_data(int argc, char **argv);

#endif
