#include "semihost.h"

#include <stdint.h>

#define SYS_WRITE0         0x04
#define SYS_EXIT_EXTENDED  0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int fw_semihost_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void fw_semihost_exit(int code)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    (void)fw_semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

void fw_semihost_write0(const char *s)
{
    (void)fw_semihost_call(SYS_WRITE0, s);
}

void fw_semihost_write_u32(unsigned long v)
{
    char buf[12];
    char *p = &buf[sizeof buf - 1];
    *p = '\0';
    do {
        *--p = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    fw_semihost_write0(p);
}

void fw_semihost_write_hex(unsigned long v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[11];
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 8; i++) {
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[10] = '\0';
    fw_semihost_write0(buf);
}
