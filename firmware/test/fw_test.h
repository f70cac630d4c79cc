/* Tiny self-contained on-target test runner (Unity would need a download).
 * Output goes through semihosting to QEMU's stdout, one line per result:
 *   PASS:<test>            FAIL:<test>:<line>:<expression>
 *   DONE:<tests>:<failures>
 * and the run ends with SYS_EXIT_EXTENDED(failures): QEMU's exit code is the
 * number of failed tests (0 = green). firmware/test/test_custom_runner.py
 * turns the lines into PlatformIO test cases. */
#ifndef FW_TEST_H
#define FW_TEST_H

#include "semihost.h"

static int fw_test_failures;
static int fw_test_count;
static int fw_test_failed_now;
static const char *fw_test_name;

#define FW_CHECK(expr)                                                        \
    do {                                                                      \
        if (!(expr)) {                                                        \
            fw_semihost_write0("FAIL:");                                      \
            fw_semihost_write0(fw_test_name);                                 \
            fw_semihost_write0(":");                                          \
            fw_semihost_write_u32(__LINE__);                                  \
            fw_semihost_write0(":" #expr "\n");                               \
            fw_test_failed_now = 1;                                           \
            return;                                                           \
        }                                                                     \
    } while (0)

#define FW_CHECK_EQ(a, b)                                                     \
    do {                                                                      \
        unsigned long fw_a_ = (unsigned long)(a), fw_b_ = (unsigned long)(b); \
        if (fw_a_ != fw_b_) {                                                 \
            fw_semihost_write0("FAIL:");                                      \
            fw_semihost_write0(fw_test_name);                                 \
            fw_semihost_write0(":");                                          \
            fw_semihost_write_u32(__LINE__);                                  \
            fw_semihost_write0(":" #a " == " #b " (");                        \
            fw_semihost_write_u32(fw_a_);                                     \
            fw_semihost_write0(" != ");                                       \
            fw_semihost_write_u32(fw_b_);                                     \
            fw_semihost_write0(")\n");                                        \
            fw_test_failed_now = 1;                                           \
            return;                                                           \
        }                                                                     \
    } while (0)

#define FW_RUN(fn)                                                            \
    do {                                                                      \
        fw_test_name = #fn;                                                   \
        fw_test_failed_now = 0;                                               \
        fw_test_count++;                                                      \
        fn();                                                                 \
        if (fw_test_failed_now) {                                             \
            fw_test_failures++;                                               \
        } else {                                                              \
            fw_semihost_write0("PASS:" #fn "\n");                             \
        }                                                                     \
    } while (0)

#define FW_TESTS_END()                                                        \
    do {                                                                      \
        fw_semihost_write0("DONE:");                                          \
        fw_semihost_write_u32((unsigned long)fw_test_count);                  \
        fw_semihost_write0(":");                                              \
        fw_semihost_write_u32((unsigned long)fw_test_failures);               \
        fw_semihost_write0("\n");                                             \
        fw_semihost_exit(fw_test_failures);                                   \
    } while (0)

#endif
