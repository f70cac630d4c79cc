/* Error codes: 0 is success, failures are negative. Shared with the wire
 * protocol's error frame and with the Python exception tree. */
#ifndef SB_ERRORS_H
#define SB_ERRORS_H

#define SB_OK            0
#define SB_EINVAL       -1   /* an argument out of its range */
#define SB_ERANGE       -2   /* index (row, column, layer, cell) out of the array */
#define SB_ECONFIG      -3   /* parameter block invalid or not configured */
#define SB_ECRC         -4   /* frame CRC mismatch */
#define SB_EFRAME       -5   /* malformed frame (COBS, truncated, bad header) */
#define SB_EOVERSIZE    -6   /* frame longer than SB_MAX_PAYLOAD */
#define SB_ECMD         -7   /* unknown command */
#define SB_ELEN         -8   /* payload length wrong for the command */
#define SB_EOVERFLOW    -9   /* event ring overflowed */
#define SB_EVERIFY     -10   /* write-verify failed on some cells */
#define SB_ESTATE      -11   /* command not allowed in this state */
#define SB_EPROTO      -12   /* protocol version mismatch */
#define SB_ECOUNT       13   /* number of codes (positive), for tables */

#endif
