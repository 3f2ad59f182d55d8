"""Config hashes are content addresses of existing run folders: pinned here so a refactor cannot move them.

The values were computed on main before the config dataclasses moved to ``policies/configs.py`` and
``samplers/configs.py`` and are unchanged by that move (a hash covers field names and values, not the class or
module). If a deliberate change to a preset or a config field moves one, existing runs regenerate: say so in the
change and update the pin.
"""

import pytest

from deepforcing import methods, policies, samplers
from deepforcing.configs import config_hash

PINNED_METHODS = {
    "self-forcing": "039560aec0f0",
    "self-forcing-full": "3f1c204e0aae",
    "deep-forcing": "4202bb11981b",
    "deep-forcing-ds": "f76b415db4ef",
    "deep-forcing-paper": "702fa8bc02f5",
    "deep-forcing-query-denoising": "21f7d648af45",
    "rolling-forcing": "80a73b6d9c33",
    "sink-longlive": "908ea523edf2",
    "sink-rolling": "bfb2bfb53a31",
    # Issue 15's methods, pinned when they were added (longlive = sink-longlive's settings on other weights; the
    # weights are a separate part of a unit's key).
    "rolling-sink": "6ead783d1177",
    "infinity-rope": "44b824a6b5ff",
    "memrope": "aa06a71f0cfd",
    "lol-paper": "a7baf10a088e",
    "longlive": "908ea523edf2",
}

PINNED_DEFAULT_CONFIGS = [
    (policies, "full", "44136fa355b3"),
    (policies, "fifo", "1483fad74541"),
    (policies, "deep-sink", "3428c41b7bd4"),
    (policies, "participative-compression", "0e47c3e96d8a"),
    (policies, "rolling-forcing-sink", "a84a7d7fe272"),  # was called "rolling-sink": same hash (HASH_NAMES)
    # Issue 15's policies, pinned when they were added.
    (policies, "rolling-sink", "571c651a0c19"),
    (policies, "infinity-rope", "aef8cd047e78"),
    (policies, "memrope", "b04cdf199e0f"),
    (policies, "lol", "a57947dd9d18"),
    (samplers, "chunkwise", "e5983d080d75"),
    (samplers, "rolling", "48ae63388d76"),
]


@pytest.mark.parametrize(("name", "expected"), sorted(PINNED_METHODS.items()))
def test_method_config_hashes_are_pinned(name, expected):
    assert methods.get(name).config_hash == expected


@pytest.mark.parametrize(
    ("registry", "name", "expected"), PINNED_DEFAULT_CONFIGS, ids=[n for _, n, _ in PINNED_DEFAULT_CONFIGS]
)
def test_default_config_hashes_are_pinned(registry, name, expected):
    assert config_hash(registry.config_class(name)()) == expected


def test_equal_settings_share_a_hash():
    # budget 16 / recent 4 / query both are deep-forcing's own values: the same config, the same hash (one unit).
    for twin in ("deep-forcing-budget16", "deep-forcing-recent4", "deep-forcing-query-both"):
        assert methods.get(twin).config_hash == PINNED_METHODS["deep-forcing"]
