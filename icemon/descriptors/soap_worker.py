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
from typing import Any


def make_soap(c: dict[str, Any]) -> Any:
    """The dscribe SOAP of the settings ``c`` (a ``SoapConfig`` as a dict), taking centres
    given as an (M, 3) float array without dscribe's per-centre Python loop.

    ``SOAP.prepare_centers`` checks every centre's type in Python (measured: 6 µs per
    centre, ~12 % of the descriptor's cost on 2,880 O); an (M, 3) float array needs no
    such check, so it is handed to the C++ extension as it is (the result is the same to
    the bit). Lists, indices and anything else go through dscribe's own check."""
    import numpy as np
    from dscribe.descriptors import SOAP

    soap = SOAP(species=["O"], r_cut=c["r_cut"], n_max=c["n_max"], l_max=c["l_max"],
                sigma=c["sigma"], periodic=True, sparse=False, dtype="float64")
    checked = soap.prepare_centers

    def prepare_centers(system: Any, centers: Any = None) -> tuple[Any, Any]:
        if (isinstance(centers, np.ndarray) and centers.ndim == 2 and len(centers)
                and centers.shape[1] == 3 and centers.dtype.kind == "f"):
            cell = system.get_cell()
            if np.cross(cell[0], cell[1]).dot(cell[2]) == 0:
                raise ValueError("System doesn't have cell to justify periodicity.")
            return (np.ascontiguousarray(centers, dtype=np.float64),
                    np.full(len(centers), -1, dtype=np.int64))
        return checked(system, centers)

    soap.prepare_centers = prepare_centers
    return soap


def main() -> None:
    import numpy as np
    from ase import Atoms

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    c = pickle.load(inp)
    # the same descriptor as icemon.descriptors.soap.Soap (make_soap, above; icemon itself is
    # not imported: its package import would load torch into every helper)
    soap = make_soap(c)
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
