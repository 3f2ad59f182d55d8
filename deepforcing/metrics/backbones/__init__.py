"""Feature backbones of the metrics, loaded from the exact files the reference implementations use.

Each loader takes a local path (no network, ever) and raises :class:`~deepforcing.errors.UserError` naming the
file when it is missing or not in the expected format.
"""
