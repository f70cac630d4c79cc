from __future__ import annotations

import numpy as np
import pytest

from spikeboard import cards
from spikeboard.backends.model import ModelBackend


def make_model(card: str = "spec", geometry: str = "32x32", **kw) -> ModelBackend:
    b = ModelBackend()
    b.configure(cards.compile_card(cards.load(card), geometry, **kw))
    return b


def ideal_card(**synapse):
    """The spec card with every source of randomness off, for known answers."""
    base = {"d2d_step": 0.0, "d2d_window": 0.0, "c2c": 0.0, "read_noise": 0.0}
    base.update(synapse)
    return cards.load("spec").with_overrides(synapse=base)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
