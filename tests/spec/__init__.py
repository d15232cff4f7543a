"""Tests of `wtc.spec`."""
