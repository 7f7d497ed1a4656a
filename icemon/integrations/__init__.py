"""The same classification inside other tools: MDAnalysis
(:mod:`~icemon.integrations.mdanalysis`) and OVITO (:mod:`~icemon.integrations.ovito`)."""
