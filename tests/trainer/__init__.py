"""Tests of `wtc.trainer`."""
