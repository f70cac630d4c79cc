"""PlatformIO custom test runner for the on-target tests (firmware/test/).

The test firmware runs in QEMU (test_testing_command in platformio.ini) and
prints PASS:/FAIL:/DONE: lines through semihosting (see fw_test.h); QEMU's
exit code is the number of failures. Each line becomes a PlatformIO test case.
"""
from platformio.public import TestCase, TestRunnerBase, TestStatus


class CustomTestRunner(TestRunnerBase):
    def on_testing_line_output(self, line):
        if self.options.verbose:
            print(line, end="")
        text = line.strip()
        if text.startswith("PASS:"):
            self.test_suite.add_case(TestCase(name=text[5:], status=TestStatus.PASSED))
        elif text.startswith("FAIL:"):
            name, _, detail = text[5:].partition(":")
            self.test_suite.add_case(
                TestCase(name=name, status=TestStatus.FAILED, message=detail)
            )
        elif text.startswith("DONE:"):
            self.test_suite.on_finish()
        elif text:
            print(line, end="")
