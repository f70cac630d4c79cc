/* Static sizes of the chip model. No heap: every buffer is sized here. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stdint.h>
#include <stddef.h>

#ifndef SB_MAX_ROWS
#define SB_MAX_ROWS 32      /* rows (pre-neurons) of one layer/tile */
#endif
#ifndef SB_MAX_COLS
#define SB_MAX_COLS 32      /* columns of one layer/tile */
#endif
#ifndef SB_MAX_LAYERS
#define SB_MAX_LAYERS 3     /* vertically stacked layers */
#endif
#ifndef SB_MAX_CELLS
#define SB_MAX_CELLS 1024   /* rows*cols*layers of the largest preset */
#endif
#define SB_MAX_NEURONS SB_MAX_COLS      /* per layer */
#define SB_CURVE_BINS 64                /* step tables per branch, indexed by position in window */
#define SB_MAX_STEPS 256                /* time steps of one inference/training request */
#define SB_MAX_PAYLOAD 1024             /* largest frame payload on the wire */
/* Cell-pulses one PULSE request may ask for (cells x count): the board must
 * answer well inside its watchdog period (about 0.4 s on the virtual chip of
 * a 168 MHz M4); the host splits bigger requests. */
#define SB_MAX_PULSE_WORK 262144

#define SB_VERSION_MAJOR 0
#define SB_VERSION_MINOR 1
#define SB_VERSION_PATCH 0
#define SB_VERSION_STRING "0.1.0"

/* CRC-32 of the hal/ sources (tools/hal_id.py), set by the build. */
#ifndef SB_HAL_ID
#define SB_HAL_ID 0u
#endif

#endif
