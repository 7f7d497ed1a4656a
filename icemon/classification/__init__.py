"""Phase labels from descriptors: the nearest reference environment, then the regional
checks (:mod:`icemon.classification.checks`)."""
