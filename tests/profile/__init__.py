"""Tests of `wtc.profile`."""
