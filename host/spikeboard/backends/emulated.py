"""The emulator backend: the real firmware running in QEMU (or Renode), reached
over its socket UART exactly as a real board is reached over USB serial."""
from __future__ import annotations

from ..emulator import Emulator, find_firmware
from .remote import RemoteBackend


class EmulatorBackend(RemoteBackend):
    name = "emulator"

    def __init__(self, board: str = "netduinoplus2", url: str | None = None, *, firmware=None,
                 icount: int | None = None, timeout: float = 5.0, retries: int = 4):
        self.emu = None
        if url is None:
            self.emu = Emulator(firmware or find_firmware(board), icount=icount)
            url = self.emu.start()
        try:
            super().__init__(url, timeout=timeout, retries=retries)
            self.check_build()
        except Exception:
            if self.emu:
                self.emu.stop()
            raise

    def restart_board(self) -> None:
        """Kill and restart the emulated board (a power cycle): the firmware
        comes back unconfigured and the link reconnects."""
        if self.emu is None:
            self.reboot()
            return
        self.link.close()
        url = self.emu.restart()
        from ..link import Link

        self.link = Link(url, timeout=self.link.timeout, retries=self.link.retries, on_event=self._on_event)
        self.url = url

    def close(self) -> None:
        super().close()
        if self.emu is not None:
            self.emu.stop()
