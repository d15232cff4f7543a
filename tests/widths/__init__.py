"""Tests of `wtc.widths`."""
