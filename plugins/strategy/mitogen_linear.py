"""Mitogen's linear strategy, for faster runs: `ANSIBLE_STRATEGY=mitogen_linear`.

Opt-in, never the default (README "Speed", docs/benchmark.md). Ansible's own
`linear` strategy stays the default because ansible-core deprecates
third-party strategy plugins; Mitogen (pinned in requirements.txt) keeps one
Python interpreter per host alive for the whole run instead of starting one
per task, which makes a run about three times faster.

This file is the whole plugin: like Mitogen's own proxy module, it imports the
real strategy under its canonical name, so ansible_mitogen is loaded once.
The connections Mitogen speeds up are the short names `ssh` (the regions) and
`podman` (the lab); any other connection runs as it would under `linear`.
"""

from __future__ import annotations

import ansible_mitogen.loaders
import ansible_mitogen.strategy

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
