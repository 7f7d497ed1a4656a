"""Model v0.10 = v0.9 (every array as shipped) + ordered cores in the growth check.

    python configs/add_cores.py v0.9.npz icemon/data/ice-denoiser.npz

``configs/default.json`` sets the same (``growth_core`` 2); the shipped file keeps v0.9's
arrays exactly (see ``configs/add_growth.py`` for why a rebuild on another CPU differs by
up to 1e-5) and adds ``growth_core``.
"""

import sys

from icemon import IcemonModel
from icemon.classification.checks import GrowthCheck

src, dst = sys.argv[1], sys.argv[2]
model = IcemonModel.load(src)
growth = model.classifier.check("growth")
assert isinstance(growth, GrowthCheck), "v0.10 starts from a model with the growth check"
model.classifier.add(GrowthCheck(growth.contact, growth.rounds, growth.own_weight, core=2))
meta = dict(model.meta)
meta["name"] = "ice-denoiser"
train = dict(meta["train"])
train["config"] = {**train["config"], "growth_core": 2}
train["commands"] = [*train.get("commands", []), "python configs/add_cores.py v0.9.npz "
                     "icemon/data/ice-denoiser.npz (v0.9's arrays + ordered cores, 2 "
                     "neighbours)"]
meta["train"] = train
model.meta = meta
model.save(dst)
print(dst, model.sha256)
