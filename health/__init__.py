"""The health domain of Big Health DAO, standing on the node's machinery.

- ``health.contracts``: the deterministic on-chain modules (identities, consent, record
  commitments, audit, governance, diabetes care, referrals) on ``node.app``'s ``Module``
  interface, and ``health_registry()`` that puts them together with the node's modules;
- ``health.xeddsa``: proofs of possession of X25519 encryption keys (XEdDSA signatures).

The design is in ``docs/HEALTH.md``. Nothing in ``node/`` imports this package except the
CLI, the composition root.
"""
