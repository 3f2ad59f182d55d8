"""Toy world: a procedural video world, a small causal Wan model trained on it, and oracle metrics.

* :mod:`deepforcing.toyworld.world` — scenes of bouncing shapes, captions, deterministic renderer;
* :mod:`deepforcing.toyworld.autoencoder` — the learned latent space, the toy VAE (one latent frame = one frame);
* :mod:`deepforcing.toyworld.text` — learned caption embedding (vocabulary of the grammar);
* :mod:`deepforcing.toyworld.model` — the shipped weights (``weights/``) and how they are loaded and sampled;
* :mod:`deepforcing.toyworld.recipe` — the training run that reproduces them (stages in ``autoencoder``,
  ``train``, ``distill``);
* :mod:`deepforcing.toyworld.oracle` — presence, colour, background, motion and repetition checks;
* :mod:`deepforcing.toyworld.generate` — generate (and score) a toy video with any named method.

Nothing here is imported by ``import deepforcing``.
"""
