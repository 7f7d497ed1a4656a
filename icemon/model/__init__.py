"""The score network (E(3)-equivariant, e3nn), the iterative
:class:`~icemon.model.denoise.Denoiser` and the model file (weights + arrays + JSON
config)."""
