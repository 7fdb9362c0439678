"""Tests of Big Health DAO (nothing imports this package)."""
