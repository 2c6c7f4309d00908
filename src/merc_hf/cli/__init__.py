"""Command-line entry points, installed as console scripts by ``pip install merc_hf``.

- ``merc-train`` (:mod:`merc_hf.cli.train`): train from a hub config, select on validation, evaluate the test
  split once, save the checkpoint with its model card and metrics.
- ``merc-evaluate`` (:mod:`merc_hf.cli.evaluate`): evaluate a checkpoint on the dataset it records (or another).
- ``merc-predict`` (:mod:`merc_hf.cli.predict`): run a checkpoint on new conversations given as JSON.
- ``merc-measure-difficulty`` (:mod:`merc_hf.cli.measure_difficulty`): CMERC's curriculum difficulties from a
  trained plain checkpoint (the reference's offline step), for ``merc-train --difficulties``.

``examples/train.py`` and ``examples/evaluate.py`` call the same functions from a clone.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def json_option(parser: argparse.ArgumentParser, flag: str, value: str | None) -> dict[str, Any]:
    """Parse a JSON-object command-line option; malformed JSON is a usage error naming the flag."""
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        parser.error(f"{flag} is not valid JSON ({err}): {value!r}")
    if not isinstance(parsed, dict):
        parser.error(f"{flag} must be a JSON object, got {value!r}")
    return parsed
