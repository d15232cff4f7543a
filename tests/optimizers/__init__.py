"""Tests of `wtc.optimizers`."""
