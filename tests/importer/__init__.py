"""Tests of `wtc.importer`."""
