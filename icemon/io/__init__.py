"""File I/O: trajectory readers, the HDF5 log (writer and reader), extxyz output."""
