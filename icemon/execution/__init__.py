"""How a frame is run: the :class:`~icemon.execution.pipeline.Pipeline`, MPI ranks sharing
one frame (:mod:`~icemon.execution.mpi`), worker processes sharing frames
(:mod:`~icemon.execution.pool`)."""
