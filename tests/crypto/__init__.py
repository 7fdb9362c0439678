"""Tests of crypto_core."""
