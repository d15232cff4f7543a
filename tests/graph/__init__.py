"""Tests of `wtc.graph`."""
