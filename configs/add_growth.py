"""Model v0.9 = v0.8 (every array as shipped) + the interface growth check.

    python configs/add_growth.py v0.8.npz icemon/data/ice-denoiser.npz

Rebuilding from configs/default.json (``icemon train --config configs/default.json
--workdir runs/v09 --threads 1 -o runs/v09.npz --name ice-denoiser``) gives the same
classifier with the growth check; on another CPU the calibration's float32 network
rounding moves the repeat threshold and the phase units by up to 1e-5 (measured), so the
shipped file keeps v0.8's arrays exactly and adds the check's two.
"""

import sys

from icemon import IcemonModel
from icemon.classification.checks import GrowthCheck

src, dst = sys.argv[1], sys.argv[2]
model = IcemonModel.load(src)
model.classifier.add(GrowthCheck(3.5, 8))
meta = dict(model.meta)
train = dict(meta["train"])
train["config"] = {**train["config"], "growth_contact": 3.5, "growth_rounds": 8}
train["commands"] = [*train.get("commands", []), "python configs/add_growth.py v0.8.npz "
                     "icemon/data/ice-denoiser.npz (v0.8's arrays + GrowthCheck(3.5 Å, 8))"]
meta["train"] = train
model.meta = meta
model.save(dst)
print(dst, model.sha256)
