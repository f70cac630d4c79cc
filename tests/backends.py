"""Opening the non-model backends for tests, or skipping with the reason."""
from __future__ import annotations

import os
import shutil

import pytest

from spikeboard.errors import SpikeboardError


def emulator_backend():
    if not shutil.which("qemu-system-arm"):
        pytest.skip("emulator backend: qemu-system-arm not installed (tools/setup.sh installs it)")
    from spikeboard.emulator import find_firmware

    try:
        find_firmware("netduinoplus2")
    except SpikeboardError as e:
        pytest.skip(f"emulator backend: {e}")
    from spikeboard.backends.emulated import EmulatorBackend

    return EmulatorBackend()


def serial_backend():
    url = os.environ.get("SPIKEBOARD_SERIAL_PORT")
    if not url:
        pytest.skip("serial backend: no board attached (set SPIKEBOARD_SERIAL_PORT to its URL)")
    from spikeboard.backends.remote import RemoteBackend

    return RemoteBackend(url)
