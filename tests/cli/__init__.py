"""Tests of `wtc.cli`: each command in-process."""
