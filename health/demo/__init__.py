"""``bighealth demo``'s story: the diabetes-care story told on a running health network.

- ``health.demo.cast``: the parties, the nodes they use and their keystores and clients;
- ``health.demo.story``: the steps, each with its check (``Story.tell``);
- ``health.demo.narrator``: one line per step, the first failure ends the story;
- ``health.demo.watch``: a node's event feed and waiting for heights.

The CGM's readings are ``health.meter``'s simulated patient.

The network itself (a testnet of node processes on this host) is made and run by the
command line (``node.cli.demo``).
"""

from health.demo.cast import PEOPLE, DemoNetwork, DemoNode, Person
from health.demo.narrator import Outcome
from health.demo.story import Story, StoryOptions

__all__ = ["PEOPLE", "DemoNetwork", "DemoNode", "Outcome", "Person", "Story", "StoryOptions"]
