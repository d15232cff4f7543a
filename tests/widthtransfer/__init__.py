"""Tests of `wtc.widthtransfer`."""
