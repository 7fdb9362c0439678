"""``bighealth chaos``: fault campaigns on a live local health network, and their report.

One job a module:

- ``schedule``: the seeded, replayable stream of fault episodes;
- ``faults``: the node processes and their faults (``kill -9``, SIGSTOP/SIGCONT, the fault
  gate of ``bighealth run --fault-gate`` for partitions and one-way losses, restarts with a
  skewed clock);
- ``workload``: the health workload (readings uploaded as encrypted records, the
  acknowledged ones read back at the end);
- ``checks``: the invariants, judged on plain values;
- ``watch``: what the running nodes' APIs say (heights, block ids, state roots, recovery);
- ``stores``: what the stopped nodes' stores hold (blocks, results, votes in certificates
  and in the write-ahead log);
- ``at_rest``: the scan of every LevelDB for known plaintext;
- ``campaign``: one campaign from an empty directory to its ``CampaignResult``;
- ``report``: the JSON document, the table, ``docs/RELIABILITY.md``;
- ``command``: the ``bighealth chaos`` command line.
"""
