/* Error codes: 0 is success, failures are negative. Shared with the wire
 * protocol's error frame and with the Python exception tree; what each one
 * means, in words, is sb_strerror's table (hal/src/errors.c), the one text
 * the firmware and the host both print. */
#ifndef SB_ERRORS_H
#define SB_ERRORS_H

#define SB_OK            0
#define SB_EINVAL       -1
#define SB_ERANGE       -2
#define SB_ECONFIG      -3
#define SB_ECRC         -4
#define SB_EFRAME       -5
#define SB_EOVERSIZE    -6
#define SB_ECMD         -7
#define SB_ELEN         -8
#define SB_EOVERFLOW    -9
#define SB_EVERIFY     -10
#define SB_ESTATE      -11
#define SB_EPROTO      -12
#define SB_ECOUNT       13   /* number of codes (positive), for tables */

/* The meaning of a code ("unknown error" for one not listed above). */
const char *sb_strerror(int code);

#endif
