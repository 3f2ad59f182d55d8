"""Samplers: HOW frames are denoised. Only samplers know about timesteps."""
