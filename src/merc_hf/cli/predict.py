"""``merc-predict``: run a merc_hf checkpoint on new conversations given as JSON.

    merc-predict --model outputs/m3net-cmerc-synthetic/model conversation.json
    merc-predict --model org/m3net-meld-text conversations.json --reliability --format table
    cat conversation.json | merc-predict --model DIR -

The input file holds one conversation (a list of turns ``{"speaker": ..., "text": ...}``, with
``"text_features"``/``"audio"``/``"visual"`` feature rows where the checkpoint needs them) or a list of
conversations; for a sentiment (CMC) checkpoint, one clip ``{"text_features": [[...]], "audio": [[...]], ...}``
or a list of clips. The checkpoint's processor says which features it needs; input it cannot take is refused
with a message saying what is missing. The predictions (per utterance: label, calibrated probabilities,
confidence and, with ``--reliability``, the confidence under each removal view and the views that raise it)
are printed as JSON (``--format json``, the default) or as a table (``--format table``), or written to
``--output``. Runs :func:`merc_hf.pipeline`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..data.errors import DataFormatError


def build_parser() -> argparse.ArgumentParser:
    """The ``merc-predict`` parser."""
    parser = argparse.ArgumentParser(
        prog="merc-predict",
        description="Predict the emotion of every utterance of new conversations with a merc_hf checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("input", help="JSON file with a conversation or a list of them ('-': standard input)")
    parser.add_argument("--model", required=True, help="checkpoint folder or Hub id")
    parser.add_argument(
        "--reliability",
        action="store_true",
        help="add each removal view's confidence and the views that raise it",
    )
    parser.add_argument("--format", choices=("json", "table"), default="json", help="output format")
    parser.add_argument("--output", default=None, help="write here instead of standard output")
    parser.add_argument("--batch_size", type=int, default=8, help="conversations per forward pass")
    parser.add_argument("--device", default=None, help="cpu, cuda, a GPU index (None: a GPU if there is one)")
    return parser


def read_input(path: str) -> Any:
    """The parsed JSON of ``path`` (``-``: standard input); unreadable or malformed input names the file."""
    name = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except FileNotFoundError:
        raise DataFormatError("file not found", file=name) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"cannot read the file ({err})", file=name) from None
    except (json.JSONDecodeError, RecursionError) as err:
        raise DataFormatError(f"not valid JSON ({err})", file=name) from None


def main(argv: list[str] | None = None) -> Any:
    """Predict as the command line says; return the pipeline's result."""
    from ..pipelines import describe_predictions, pipeline

    args = build_parser().parse_args(argv)
    try:
        inputs = read_input(args.input)
        predict = pipeline(model=args.model, device=args.device, batch_size=args.batch_size)
        result = predict(inputs, reliability=args.reliability)
    except DataFormatError as err:
        if err.file is None and args.input != "-":
            err = DataFormatError(str(err), file=args.input)
        raise SystemExit(f"merc-predict: {err}") from None
    text = (
        describe_predictions(result)
        if args.format == "table"
        else json.dumps(result, indent=2, default=float)
    )
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return result


def cli() -> None:
    """The ``merc-predict`` console script: :func:`main`, whose return value the script wrapper would otherwise
    take for an exit status."""
    main()


if __name__ == "__main__":
    main()
