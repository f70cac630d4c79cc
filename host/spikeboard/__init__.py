"""spikeboard: firmware, host tools and bit-exact reference model for an
integrated neuromorphic chip (neurons, synapse array, interface circuits)."""
from __future__ import annotations

__version__ = "0.1.0"
