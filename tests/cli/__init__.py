"""Tests of the bighealth command line."""
