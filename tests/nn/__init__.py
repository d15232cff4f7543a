"""Tests of `wtc.nn`."""
