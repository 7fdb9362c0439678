"""Tests of the simulator (netsim/)."""
