"""Helper process computing SOAP descriptors for part of a frame's atoms.

dscribe's C++ holds the GIL, so threads cannot share the SOAP work; :class:`icemon.
descriptors.Soap` runs this file in a fresh interpreter (which imports only numpy, ase
and dscribe — not torch, not the user's script) and talks to it
over its stdin/stdout with pickled messages:

* first message: the ``SoapConfig`` as a dict;
* then per job: ``(positions (N, 3) Å, cell (3, 3) Å, centres (M, 3) Å)`` → ``(M, F)``
  array (centres by position: linear in M; by index dscribe would cost M × N)
  (or an exception, sent back and raised by the parent);
* ``None`` ends the process.
"""

from __future__ import annotations

import pickle
import sys


def main() -> None:
    import numpy as np
    from ase import Atoms
    from dscribe.descriptors import SOAP

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    c = pickle.load(inp)
    # the same settings as icemon.core.descriptors.Soap (not imported: icemon's package
    # import would load torch into every helper)
    soap = SOAP(species=["O"], r_cut=c["r_cut"], n_max=c["n_max"], l_max=c["l_max"],
                sigma=c["sigma"], periodic=True, sparse=False, dtype="float64")
    while True:
        try:
            job = pickle.load(inp)
        except EOFError:
            return
        if job is None:
            return
        positions, cell, centers = job
        try:
            atoms = Atoms(numbers=np.full(len(positions), 8), positions=positions, cell=cell,
                          pbc=True)
            reply = soap.create(atoms, centers=centers)
        except Exception as exc:  # reported to the parent, which raises it
            reply = exc
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    main()
