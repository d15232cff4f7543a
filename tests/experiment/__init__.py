"""Tests of `wtc.experiment`."""
