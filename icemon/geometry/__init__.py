"""Where atoms are: the oxygen :class:`~icemon.geometry.frame.Frame` (Å), periodic
neighbour lists and the neighbour service a frame shares among its checks, replicated
boxes."""
