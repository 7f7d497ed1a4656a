"""Classify one snapshot with the Python API and look at the result.

    python examples/classify_snapshot.py [TRAJ [TOPOLOGY]]

Without arguments it uses the first GCIceNet liquid-water frame beside the checkout.
"""

import sys
from pathlib import Path

from icemon import Pipeline, read_frames

data = Path(__file__).resolve().parents[2] / "shared" / "data" / "gcicenet"
traj = sys.argv[1] if len(sys.argv) > 1 else data / "md_w_dev.xtc"
top = sys.argv[2] if len(sys.argv) > 2 else (data / "md_w.tpr" if len(sys.argv) == 1 else None)

pipe = Pipeline()  # the shipped pretrained model
frame = next(read_frames(traj, top))
result = pipe.process(frame)
print(f"{frame.n_atoms} oxygens, cell {frame.cell.diagonal().round(2)} Å, "
      f"{result.n_denoise_steps} denoising steps")
print(result.table())
print("time per stage (s):", {k: round(v, 3) for k, v in result.timings.items()})
