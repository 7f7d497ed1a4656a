"""Training and calibration from ideal GenIce2 lattices only: references, score-network
training, classifier and liquid threshold, model files."""
