/* ARM semihosting (BKPT 0xAB). Only for the emulator (QEMU with
 * -semihosting-config enable=on,target=native) or with a debugger attached:
 * on a free-running board a BKPT without debugger is a HardFault. */
#ifndef FW_SEMIHOST_H
#define FW_SEMIHOST_H

/* SYS_EXIT_EXTENDED: ends QEMU, `code` becomes its process exit code. */
__attribute__((noreturn)) void fw_semihost_exit(int code);
/* SYS_WRITE0: NUL-terminated string to QEMU's stdout (debug prints). */
void fw_semihost_write0(const char *s);
/* Unsigned decimal / hex helpers on top of write0 (no printf in the image). */
void fw_semihost_write_u32(unsigned long v);
void fw_semihost_write_hex(unsigned long v);

#endif
