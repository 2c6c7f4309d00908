"""Train, select on validation, evaluate on test, and save a merc_hf checkpoint with its model card.

A thin caller of :mod:`merc_hf.cli.train` (the ``merc-train`` console script), for a clone:

    python examples/train.py                                   # embedded synthetic default, a few minutes on CPU
    python examples/train.py --hub_config m3net-synthetic      # plain backbone, no calibration
    python examples/train.py --help                            # every flag, TrainingArguments included
"""

from merc_hf.cli.train import main

if __name__ == "__main__":
    main()
