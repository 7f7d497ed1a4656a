"""Helper process computing SOAP descriptors for some blocks of a frame.

dscribe's C++ holds the GIL, so threads cannot share the SOAP work; :class:`icemon.
descriptors.Soap` runs this file in a fresh interpreter (which imports only numpy, ase
and dscribe — not torch, not the user's script) and talks to it
over its stdin/stdout with pickled messages:

* first message: the ``SoapConfig`` as a dict;
* then per job: a list of blocks ``(local positions (M, 3) Å, n_own)``, each an isolated
  cluster whose first ``n_own`` atoms are to be described (see
  :func:`icemon.descriptors.halo_blocks`) → a list of ``(n_own, F)`` arrays (or an
  exception, sent back and raised by the parent);
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
    # the same settings as icemon.descriptors.Soap's cluster SOAP (not imported: icemon's
    # package import would load torch into every helper)
    soap = SOAP(species=["O"], r_cut=c["r_cut"], n_max=c["n_max"], l_max=c["l_max"],
                sigma=c["sigma"], periodic=False, sparse=False, dtype="float64")
    while True:
        try:
            job = pickle.load(inp)
        except EOFError:
            return
        if job is None:
            return
        try:
            reply = []
            for local, n_own in job:
                atoms = Atoms(numbers=np.full(len(local), 8), positions=local)
                reply.append(np.asarray(soap.create(atoms, centers=np.arange(n_own)))
                             .reshape(n_own, -1))
        except Exception as exc:  # reported to the parent, which raises it
            reply = exc
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    main()
