"""Calibration: input samples, statistics observers and activation-scale methods."""
