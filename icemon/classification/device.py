"""The nearest-reference search on the frame's device (the device path's classify step).

:meth:`NearestReference.assess` in torch: standardise and project the descriptors, the
per-atom score, the shell average over the neighbours within :attr:`NearestReference.
shell` Å (pairs the caller already holds on the device), the averaged score and the
nearest reference. Float64 throughout, the same operations as the host path, so both
give the same labels (tested). What leaves the device is one (N,)-sized result per
quantity; the shell pairs are copied to the host only when some atom is far from every
reference (the repeat check averages over them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from icemon.classification.reference import Assessment, NearestReference

if TYPE_CHECKING:
    import torch


@dataclass
class OnDevice:
    """A frame's descriptors on the device, with its shell pairs there too."""

    features: torch.Tensor
    """(N, D) float64 SOAP of every atom."""
    shell_i: torch.Tensor
    """(P,) centre of each pair closer than the reference's shell (both directions)."""
    shell_j: torch.Tensor
    """(P,) its neighbour."""
    reference: DeviceReference
    """The classifier's reference on the same device."""

    def assess(self) -> Assessment:
        return self.reference.assess(self)


class DeviceReference:
    """A :class:`NearestReference`'s arrays on one device (copied once)."""

    def __init__(self, ref: NearestReference, device: torch.device) -> None:
        import torch

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)

        self.ref = ref
        self.mean, self.scale, self.pca_mean = t(ref.mean), t(ref.scale), t(ref.pca_mean)
        self.components = t(ref.components)
        self.refs = t(ref.ref_features)
        self.refs2 = (self.refs**2).sum(1)
        self.ref_labels = torch.as_tensor(ref.ref_labels, dtype=torch.long, device=device)
        self.phase_scale = None if ref.phase_scale is None else t(ref.phase_scale)

    def _nearest(self, y: torch.Tensor, resid2: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        d2 = (y * y).sum(1)[:, None] - 2.0 * y @ self.refs.T + self.refs2[None, :]
        best = torch.argmin(d2, dim=1)
        score = torch.sqrt(torch.clamp(d2.gather(1, best[:, None])[:, 0], min=0.0) + resid2)
        code = self.ref_labels[best]
        if self.phase_scale is not None:
            score = score / self.phase_scale[code]
        return code, score

    def _project(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        y = z @ self.components.T
        return y, torch.clamp((z * z).sum(1) - (y * y).sum(1), min=0.0)

    def assess(self, d: OnDevice) -> Assessment:
        """:meth:`NearestReference.assess` of a whole frame's descriptors on the device."""
        import torch

        ref = self.ref
        z_all = (d.features - self.mean) / self.scale - self.pca_mean
        y_own, resid2 = self._project(z_all)
        nearest, atom_scores = self._nearest(y_own, resid2)
        scores, y = atom_scores, y_own
        pairs = None
        if ref.shell > 0:
            n = z_all.shape[0]
            total = z_all.clone().index_add_(0, d.shell_i, z_all[d.shell_j])
            count = torch.ones(n, dtype=z_all.dtype, device=z_all.device).index_add_(
                0, d.shell_i, torch.ones_like(d.shell_i, dtype=z_all.dtype))
            y, resid2 = self._project(total / count[:, None])
            nearest, scores = self._nearest(y, resid2)
        far = scores > ref.threshold
        host = {k: v.cpu().numpy() for k, v in (("nearest", nearest), ("scores", scores),
                                                ("atom_scores", atom_scores), ("own", y_own),
                                                ("far", far))}
        far_h = host["far"]
        if ref.shell > 0 and far_h.any():
            pairs = (d.shell_i.cpu().numpy(), d.shell_j.cpu().numpy())
        far_coords = torch.cat([y[far], torch.sqrt(resid2[far])[:, None]], dim=1)
        def z_rows(rows: np.ndarray) -> np.ndarray:
            return z_all[torch.as_tensor(rows, device=z_all.device)].cpu().numpy()

        return Assessment(host["nearest"].astype(np.int64), host["scores"],
                          host["atom_scores"], host["own"],
                          far_coords.cpu().numpy().astype(np.float32), pairs, z_rows)
