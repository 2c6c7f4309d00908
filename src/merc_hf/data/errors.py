"""The one exception type the data layer raises for bad input files."""

from __future__ import annotations

import os


class DataFormatError(ValueError):
    """A data file is missing, unreadable or inconsistent.

    The message always names where the problem is — the file, and when known the split, the dialogue (or
    conversation) id or, for utterance-level datasets, the sample id, and the field — so a user can open
    the file and find it. The parts are also kept as attributes for programmatic use.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        dialogue: object | None = None,
        field: str | None = None,
        split: str | None = None,
        sample: object | None = None,
    ) -> None:
        self.file = None if file is None else os.fspath(file)
        self.dialogue = dialogue
        self.field = field
        self.split = split
        self.sample = sample
        where = []
        if self.file is not None:
            where.append(f"file {self.file!r}")
        if split is not None:
            where.append(f"split {split!r}")
        if sample is not None:
            where.append(f"sample {str(sample)!r}")
        if dialogue is not None:
            where.append(f"dialogue {str(dialogue)!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
