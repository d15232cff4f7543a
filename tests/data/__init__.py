"""Tests of `wtc.data`."""
