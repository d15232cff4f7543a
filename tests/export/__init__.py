"""Tests of `wtc.export`."""
