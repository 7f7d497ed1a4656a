"""SOAP descriptors (dscribe) of denoised oxygens, and their helper processes."""
