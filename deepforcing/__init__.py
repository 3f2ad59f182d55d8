"""deepforcing-eval: generate, score and compare long videos from one causal Wan engine.

Importing this package is cheap: it imports neither torch-heavy metric backbones nor model weights.
"""

__version__ = "0.1.0"

#: Bumped whenever a change to the engine can change generated latents; part of every unit key.
ENGINE_VERSION = "1"
