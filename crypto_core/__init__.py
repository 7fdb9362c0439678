"""crypto_core: hashing, Merkle trees and proofs (Cython + pure-Python reference), signatures."""
