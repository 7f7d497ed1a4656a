"""SOAP descriptors of denoised oxygens: numba kernels with dscribe's numbers, dscribe
itself (with helper processes), and the torch version of the device path."""
