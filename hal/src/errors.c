/* What each error code means: the one table, for the firmware and (through
 * cffi) the host's exceptions. */
#include "sb/errors.h"

static const char *const meaning[SB_ECOUNT] = {
    [SB_OK] = "success",
    [-SB_EINVAL] = "argument out of its range",
    [-SB_ERANGE] = "index (row, column, layer, cell) out of the array",
    [-SB_ECONFIG] = "parameter block invalid or chip not configured",
    [-SB_ECRC] = "frame CRC mismatch",
    [-SB_EFRAME] = "malformed frame (COBS, truncated, bad header)",
    [-SB_EOVERSIZE] = "frame longer than the largest payload",
    [-SB_ECMD] = "unknown or unsupported command",
    [-SB_ELEN] = "payload length wrong for the command",
    [-SB_EOVERFLOW] = "event ring overflowed",
    [-SB_EVERIFY] = "write-verify failed on some cells",
    [-SB_ESTATE] = "command not allowed in this state",
    [-SB_EPROTO] = "protocol version mismatch",
};

const char *sb_strerror(int code) {
    return code <= 0 && code > -SB_ECOUNT && meaning[-code] ? meaning[-code] : "unknown error";
}
