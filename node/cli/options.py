"""The values the ``bighealth`` parsers show in ``--help`` and use as defaults, as literals.

Their owners live deep in the stack (``node.home.config`` loads the chain, ``health.meter``
the client library, ``health.demo`` the story): importing them to build the parser would make
every command, ``--help`` included, start in ~0.5 s instead of ~0.1 s. So the parsers take
the values from here, and ``tests/cli/test_cli_startup.py`` checks each one against its owner,
so they cannot drift apart.
"""

from __future__ import annotations

from typing import Final

P2P_LISTEN: Final = "/ip4/0.0.0.0/tcp/26656"
"""``node.home.config.P2PConfig().listen``."""
API_LISTEN: Final = "127.0.0.1:26657"
"""``node.home.config.ApiConfig().listen``."""
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
"""``node.home.config.LOG_LEVELS``."""
MAX_KV_KEY_BYTES: Final = 64
"""``node.app.kv.MAX_KV_KEY_BYTES``."""
MAX_KV_VALUE_BYTES: Final = 4 * 1024
"""``node.app.kv.MAX_KV_VALUE_BYTES``."""
TESTNET_PASSPHRASE: Final = "testnet"
"""``node.cli.health_net.DEFAULT_TESTNET_PASSPHRASE``."""
DEMO_SPEED: Final = 600.0
"""``health.demo.story.DEFAULT_SPEED``."""
DEMO_READINGS: Final = 24
"""``health.demo.story.DEFAULT_READINGS``."""
TRACE_KINDS: Final = ("cgm", "meter")
"""The values of ``health.meter.TraceKind``."""
METER_RETRIES: Final = 3
"""``health.meter.runner.DEFAULT_RETRIES``."""
METER_RETRY_DELAY_S: Final = 1.0
"""``health.meter.runner.DEFAULT_RETRY_DELAY_S``."""
IDENTITY_ID_BYTES: Final = 32
"""``health.contracts.common.ID_BYTES``: the length of an identity id."""
TESTNET_COMMIT_WAIT_MS: Final = 500
"""The pause after a commit ``bighealth testnet`` writes (``[chain] commit_wait_ms``), also
the pause of the networks ``bighealth bench network`` measures."""
BENCH_WINDOW_TXS: Final = 2_500
"""``bighealth bench network --window``: transactions sent and not yet committed at most."""
BENCH_TX_GOSSIP_MS: Final = 100
"""``bighealth bench network --tx-gossip-ms``: how often the nodes flush their clients'
transactions to peers (``testnet`` writes 500 ms for 8-node networks under light load; a
loaded 4-validator network sends full batches anyway, and a transaction waits less)."""
