"""The E(3)-equivariant score network ε_θ(r) (NequIP-style, built with e3nn).

Input: oxygen positions in a periodic cell (as a graph: positions plus periodic edges).
Output: one displacement vector per atom, in Å — the network's estimate of how far
each atom sits from its ideal lattice site, so that ``r - ε(r)`` is a cleaner structure.

The network is kept small on purpose (the monitor runs beside a simulation on CPUs):
an oxygen-only graph with a short cutoff, a few interaction blocks with
radial-MLP-weighted tensor products of neighbour features with edge spherical
harmonics, gated non-linearities, and a linear read-out to one ``1x1o`` vector.
A model file holds weights + a JSON config, never a pickled module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate
from torch import nn

from icemon.errors import ConfigError


@dataclass
class ScoreNetConfig:
    """Hyper-parameters of :class:`ScoreNet` (everything needed to rebuild it)."""

    cutoff: float = 3.7
    """Graph cutoff in Å (first O–O coordination shell of every ice phase)."""
    n_basis: int = 8
    """Number of Bessel radial basis functions."""
    lmax: int = 2
    """Largest degree of the edge spherical harmonics."""
    hidden: str = "16x0e+8x1o+4x2e"
    """Irreps of the hidden node features."""
    n_layers: int = 3
    """Number of interaction blocks."""
    hidden_last: str = ""
    """Irreps of the last block's output ("" = ``hidden``). The read-out only needs
    vectors (and scalars to gate them), so e.g. "16x0e+8x1o" drops the l = 2 work there."""
    radial_hidden: int = 32
    """Width of the radial MLP that produces the tensor-product weights."""
    avg_neighbors: float = 6.0
    """Normalisation of the neighbour sum (about the mean coordination at ``cutoff``)."""
    poly_p: int = 6
    """Exponent of the smooth polynomial cutoff envelope."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScoreNetConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown ScoreNet config keys: {sorted(unknown)}")
        return cls(**d)


class RadialBasis(nn.Module):
    """Bessel functions sin(nπr/rc)/r times a smooth polynomial envelope (NequIP)."""

    def __init__(self, cutoff: float, n_basis: int, p: int) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.p = p
        self.register_buffer("freqs", torch.arange(1, n_basis + 1) * math.pi / cutoff)
        self.prefactor = math.sqrt(2.0 / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = r / self.cutoff
        p = self.p
        env = (
            1.0
            - (p + 1) * (p + 2) / 2 * x**p
            + p * (p + 2) * x ** (p + 1)
            - p * (p + 1) / 2 * x ** (p + 2)
        ) * (x < 1.0)
        bessel = self.prefactor * torch.sin(self.freqs * r[:, None]) / r[:, None]
        return bessel * env[:, None]


class Interaction(nn.Module):
    """One NequIP-style interaction block: convolution + self-connection + gate."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_hidden: o3.Irreps,
        irreps_sh: o3.Irreps,
        n_basis: int,
        radial_hidden: int,
        avg_neighbors: float,
    ) -> None:
        super().__init__()
        self.avg_neighbors = avg_neighbors
        # gate: scalars pass through SiLU; each non-scalar gets one gating scalar
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0])
        gates = o3.Irreps(f"{gated.num_irreps}x0e")
        self.gate = Gate(scalars, [nn.functional.silu], gates, [torch.sigmoid], gated)
        irreps_pre = self.gate.irreps_in

        self.linear_in = o3.Linear(irreps_in, irreps_in)
        # 'uvu' tensor product: each input channel times each SH, weighted per edge
        irreps_mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in irreps_pre:
                        k = len(irreps_mid)
                        irreps_mid.append((mul, ir_out))
                        instructions.append((i, j, k, "uvu", True))
        irreps_mid = o3.Irreps(irreps_mid)
        irreps_mid_sorted, perm, _ = irreps_mid.sort()
        instructions = [(a, b, perm[c], mode, w) for a, b, c, mode, w in instructions]
        self.tp = o3.TensorProduct(
            irreps_in, irreps_sh, irreps_mid_sorted, instructions,
            shared_weights=False, internal_weights=False,
        )
        self.radial = FullyConnectedNet(
            [n_basis, radial_hidden, self.tp.weight_numel], nn.functional.silu
        )
        self.linear_out = o3.Linear(irreps_mid_sorted.simplify(), irreps_pre)
        self.self_connection = o3.Linear(irreps_in, irreps_pre)
        self.irreps_out = self.gate.irreps_out

    def forward(self, x, sh, basis, src, dst, x_out=None) -> torch.Tensor:
        """New features of the nodes ``x_out`` (default: all of ``x``), which must be the
        first rows of ``x``: an MPI rank orders its own atoms first and updates only them
        (its halo atoms send messages but are updated by their owners)."""
        h = self.linear_in(x)
        msg = self.tp(h[src], sh, self.radial(basis))
        x_out = x if x_out is None else x_out
        agg = torch.zeros(x_out.shape[0], msg.shape[1], dtype=msg.dtype, device=msg.device)
        agg.index_add_(0, dst, msg)
        agg = agg / math.sqrt(self.avg_neighbors)
        return self.gate(self.linear_out(agg) + self.self_connection(x_out))


class ScoreNet(nn.Module):
    """ε_θ: oxygen positions (Å) + periodic edges → displacement per atom (Å)."""

    def __init__(self, config: ScoreNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or ScoreNetConfig()
        c = self.config
        self.irreps_sh = o3.Irreps.spherical_harmonics(c.lmax)
        self.sh = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")
        self.basis = RadialBasis(c.cutoff, c.n_basis, c.poly_p)
        hidden = o3.Irreps(c.hidden)
        irreps = o3.Irreps("1x0e")  # one species: every node starts from the same scalar
        layers = []
        for k in range(c.n_layers):
            out = o3.Irreps(c.hidden_last) if k == c.n_layers - 1 and c.hidden_last else hidden
            layer = Interaction(irreps, out, self.irreps_sh, c.n_basis, c.radial_hidden,
                                c.avg_neighbors)
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = nn.ModuleList(layers)
        self.readout = o3.Linear(irreps, o3.Irreps("1x1o"))

    def forward(
        self, pos: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, shifts: torch.Tensor
    ) -> torch.Tensor:
        """Predicted displacement (N, 3) in Å.

        Args:
            pos: (N, 3) positions in Å.
            src, dst: (E,) neighbour and centre index of each directed edge; messages flow
                from ``src`` to ``dst``.
            shifts: (E, 3) Cartesian periodic image offsets in Å: the edge vector is
                ``pos[src] + shifts - pos[dst]``.
        """
        sh, basis, x = self.embed(pos, src, dst, shifts)
        for layer in self.layers:
            x = layer(x, sh, basis, src, dst)
        return self.readout(x)

    def embed(self, pos: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
              shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the blocks take: edge spherical harmonics, edge radial basis and the
        initial node features (one scalar per atom). Split out so that a caller can run
        the blocks one by one (:mod:`icemon.execution.mpi` exchanges node features
        between MPI ranks after each)."""
        vec = pos[src] + shifts - pos[dst]
        sh = self.sh(vec)
        basis = self.basis(vec.norm(dim=1))
        x = torch.ones(pos.shape[0], 1, dtype=pos.dtype, device=pos.device)
        return sh, basis, x


COMPILE_ENV = "ICEMON_COMPILE"
"""Environment variable that sets the compile default: "0" runs the network eagerly
unless a caller asks for compiling (short scripts, test suites), "1" compiles."""


def resolve_compile(compile: bool | None) -> bool:
    """Whether to compile the network: ``compile`` if given, else the default, which is to
    compile (the fast path: the network is about 1.4-2x faster per frame on CPUs once
    compiled, after a one-time compilation of ~40 s on a 2-core machine, ~4 s once
    inductor's on-disk cache holds it) unless ``$ICEMON_COMPILE`` is "0"."""
    if compile is not None:
        return bool(compile)
    import os

    value = os.environ.get(COMPILE_ENV, "1").strip().lower()
    if value not in ("0", "1", "false", "true", "no", "yes", ""):
        raise ConfigError(f"${COMPILE_ENV} must be 0 or 1, not {value!r}")
    return value not in ("0", "false", "no")


_COMPILE_FAILED: str | None = None
"""Why ``torch.compile`` failed in this process (None: it has not): every later compiled
piece runs eagerly without trying again or warning again."""


class Compiled:
    """A callable of the network (its ``forward``, ``embed`` or one block) run through
    ``torch.compile`` (inductor, dynamic shapes: one compilation serves frames of any size).

    Compiling fuses e3nn's many small per-edge products into a few C++ loops: measured on
    the GCIceNet frames with one thread, the whole network's forward pass ran 2.2x faster
    for ``two-block`` and 1.6x for the v0.1-sized network. The first call compiles (the
    shipped network: 37 s on a 2-core machine with an empty inductor cache, 4 s once the
    cache holds it). If
    compiling fails (no C++ compiler, an unsupported platform), one warning line says so and
    the eager callable is used from then on: the numbers are the same, only slower. The
    compiled code is cached where inductor keeps it (``/tmp/torchinductor_$USER`` unless
    ``$TORCHINDUCTOR_CACHE_DIR`` says otherwise)."""

    def __init__(self, fn, name: str) -> None:
        self.eager = fn
        self.name = name
        self._fn = torch.compile(fn, dynamic=True)
        self._tried = False

    def __call__(self, *args):
        global _COMPILE_FAILED
        if not self._tried:
            self._tried = True
            if _COMPILE_FAILED is not None:  # this process cannot compile: said once
                self._fn = self.eager
            else:
                try:
                    return self._fn(*args)
                except Exception as exc:  # noqa: BLE001 — any compiler failure: run eager
                    import warnings

                    _COMPILE_FAILED = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    warnings.warn(f"torch.compile of the network's {self.name} failed "
                                  f"({_COMPILE_FAILED}); running the network uncompiled "
                                  "(compile=False or ICEMON_COMPILE=0 skip the attempt)",
                                  RuntimeWarning, stacklevel=2)
                    self._fn = self.eager
        return self._fn(*args)
