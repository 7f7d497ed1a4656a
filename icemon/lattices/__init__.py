"""Ideal GenIce2 lattices as a shared service: references for training and calibration,
structures for tests, demos and benchmarks."""
