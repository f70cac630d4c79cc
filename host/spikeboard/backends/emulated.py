"""The emulator backend: the real firmware running in QEMU (or Renode), reached
over its socket UART exactly as a real board is reached over USB serial."""
from __future__ import annotations

from .._hal import lib
from ..emulator import Emulator, find_firmware
from .remote import RemoteBackend


class EmulatorBackend(RemoteBackend):
    name = "emulator"

    def __init__(self, board: str = "netduinoplus2", url: str | None = None, *, firmware=None,
                 icount: int | None = None, timeout: float = 5.0, retries: int = 4, faults=None):
        self.emu = None
        if url is None:
            self.emu = Emulator(firmware or find_firmware(board), icount=icount)
            url = self.emu.start()
        try:
            super().__init__(url, timeout=timeout, retries=retries, faults=faults)
            if self.link.faults is not None:
                self.link.faults.on_reset = self._power_cut
            self.check_build()
        except Exception:
            if self.emu:
                self.emu.stop()
            raise

    def _power_cut(self, reason: int = lib.SB_RESET_REASON_POWER_ON) -> None:
        """A fault plan's reset: the emulated board loses power mid-stream."""
        if self.emu is not None:
            self.emu.stop()

    def restart_board(self) -> None:
        """Kill and restart the emulated board (a power cycle): the firmware
        comes back unconfigured and the link reconnects."""
        if self.emu is None:
            self.reboot()
            return
        self.link.close()
        self.url = self.emu.restart()
        super().reconnect()

    def reconnect(self) -> None:
        """Reopen the UART; an emulator that died (power cut) is started again."""
        if self.emu is not None and not self.emu.alive():
            self.link.close()
            self.url = self.emu.start()
        super().reconnect()
        if self.emu is not None and self.emu.url:
            self.url = self.emu.url

    def close(self) -> None:
        super().close()
        if self.emu is not None:
            self.emu.stop()
