"""Per frame: Frame → neighbours/graph → score network → denoise → SOAP → classify (Pipeline), the model file, and the MPI-shared variant (parallel)."""
