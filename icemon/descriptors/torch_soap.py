"""SOAP power spectra in torch: dscribe's GTO descriptor, computed on the frame's device.

The device path (``Pipeline(device="cuda")``) computes descriptors where the denoised
positions already are instead of copying them to dscribe on the host. The numbers are
dscribe's (``SOAP(species=["O"], rbf="gto", periodic=True)``, no weighting, no
compression), equal within 1e-6 relative (tested), because the same analytic expansion is
evaluated:

* radial basis: dscribe's GTOs r^l exp(-α_{lk} r²), α chosen so that each decays to 1e-3
  at its radius (1 Å … r_cut), orthonormalised per l with Löwdin's β = S^{-1/2};
* a Gaussian of width σ on every neighbour within r_cut + σ√(-2 ln 10⁻³) Å (dscribe's
  cutoff padding), the centre atom included, projected analytically on the basis:
  c_{nlm} = π^{3/2} Σ_j Σ_k β'_{lnk} exp(-α'_{lk} r_j²) r_j^l Y_{lm}(r̂_j) with
  α' = α / (1 + 2σ²α) and β' = (2σ²)^{3/2} β (1 + 2σ²α)^{-(l+3/2)};
* power spectrum p_{n n' l} = π √(8 / (2l + 1)) Σ_m c_{nlm} c_{n'lm} for n ≤ n',
  ordered l-major as dscribe orders one species.

Any orthonormal real spherical harmonics give the same power spectrum (it is invariant
under a rotation within each l), so e3nn's are used. Computed in float64, centres in
chunks (memory ∝ chunk × neighbours × n_max × (l_max + 1)²).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from icemon.descriptors.soap import SoapConfig, gaussian_projection


class TorchSoap:
    """Per-atom SOAP power spectra of a periodic oxygen structure, in torch.

    ``TorchSoap(config)(positions, cell)`` → (N, n_features) float64 tensor on the
    positions' device; ``pairs`` may be given when the caller already holds a list at
    :attr:`radius` (centre, neighbour, Å shift, both directions, centre excluded)."""

    def __init__(self, config: SoapConfig | None = None, chunk: int = 4096) -> None:
        c = self.config = config or SoapConfig()
        self.chunk = int(chunk)
        self.radius = c.reach
        """Å, neighbours within this count (r_cut + padding)."""
        # exp(a r²) (L, K) and the radial weight of GTO k in basis function n (L, N, K)
        self._a, self._b = gaussian_projection(c)
        self._lm_l = np.repeat(np.arange(c.l_max + 1), 2 * np.arange(c.l_max + 1) + 1)
        self._upper = np.stack(np.triu_indices(c.n_max))
        self._prefactor = np.pi * np.sqrt(8.0 / (2.0 * np.arange(c.l_max + 1) + 1.0))
        self._cache: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    @property
    def n_features(self) -> int:
        return self.config.n_features

    def _consts(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._cache:
            def t(x):
                return torch.as_tensor(x, dtype=torch.float64, device=device)
            self._cache[device] = (t(self._a), t(self._b), torch.as_tensor(
                self._lm_l, device=device), t(self._prefactor),
                torch.as_tensor(self._upper, device=device))
        return self._cache[device]

    def __call__(self, positions: torch.Tensor, cell: np.ndarray,
                 pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
                 ) -> torch.Tensor:
        """(N, n_features) float64 descriptors of every atom (positions (N, 3) Å on any
        device, cell (3, 3) Å)."""
        from icemon.geometry.device_neighbors import device_pairs

        pos = torch.as_tensor(positions).to(torch.float64)
        if pairs is None:
            pairs = device_pairs(pos, cell, self.radius)
        i, j, shift = pairs
        n = pos.shape[0]
        c = self.config
        a, b, lm_l, pref, upper = self._consts(pos.device)
        out = torch.empty((n, self.n_features), dtype=torch.float64, device=pos.device)
        # centres are sorted in the list: a chunk of centres is a slice of the pairs
        bounds = torch.searchsorted(i, torch.arange(0, n + self.chunk, self.chunk,
                                                    device=pos.device).clamp(max=n))
        bounds = bounds.tolist()
        y00 = 0.5 / math.sqrt(math.pi)
        self_term = b[0].sum(dim=1) * y00  # (N_max,) the centre atom itself (r = 0)
        for part, lo in enumerate(range(0, n, self.chunk)):
            hi = min(n, lo + self.chunk)
            e0, e1 = bounds[part], bounds[part + 1]
            ci = i[e0:e1] - lo
            d = pos[j[e0:e1]] + shift[e0:e1].to(torch.float64) - pos[i[e0:e1]]
            coeff = self._coefficients(d, ci, hi - lo, a, b, lm_l)  # (C, N_max, LM)
            coeff[:, :, 0] += self_term
            coeff *= math.pi**1.5
            out[lo:hi] = self._power(coeff, pref, upper, c.l_max)
        return out

    def _coefficients(self, d: torch.Tensor, centre: torch.Tensor, n_centres: int,
                      a: torch.Tensor, b: torch.Tensor, lm_l: torch.Tensor) -> torch.Tensor:
        """Σ over each centre's neighbours of R_nl(r) r^l Y_lm(r̂), without π^{3/2}."""
        from e3nn import o3

        c = self.config
        r2 = (d * d).sum(1)
        g = torch.exp(a[None] * r2[:, None, None])  # (E, L, K)
        radial = torch.einsum("elk,lnk->eln", g, b)  # (E, L, N_max)
        # solid harmonics r^l Y_lm with Y orthonormal on the sphere
        sh = o3.spherical_harmonics(list(range(c.l_max + 1)), d, normalize=False,
                                    normalization="integral")  # (E, LM)
        per_edge = radial[:, lm_l, :].transpose(1, 2) * sh[:, None, :]  # (E, N_max, LM)
        coeff = torch.zeros((n_centres, c.n_max, sh.shape[1]), dtype=torch.float64,
                            device=d.device)
        coeff.index_add_(0, centre, per_edge)
        return coeff

    @staticmethod
    def _power(coeff: torch.Tensor, pref: torch.Tensor, upper: torch.Tensor,
               l_max: int) -> torch.Tensor:
        """p[l, n ≤ n'] = pref_l Σ_m c_nlm c_n'lm, flattened l-major (dscribe's order)."""
        parts = []
        at = 0
        for deg in range(l_max + 1):
            block = coeff[:, :, at:at + 2 * deg + 1]
            at += 2 * deg + 1
            p = torch.einsum("inm,ikm->ink", block, block) * pref[deg]
            parts.append(p[:, upper[0], upper[1]])
        return torch.cat(parts, dim=1)
