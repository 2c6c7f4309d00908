"""The one exception type the data layer raises for bad input files."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


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


@contextlib.contextmanager
def file_errors(file: str | os.PathLike, **where: Any) -> Iterator[None]:
    """Turn what bad input can raise deep inside parsing into a :class:`DataFormatError` naming ``file``.

    Readers check what they know how to check; this catches the rest at the file boundary: recursion on
    deeply nested data, integers longer than Python converts (4300 digits), numpy's limits (more than 64
    dimensions), exhausted memory, and files that cannot be opened (permissions). ``where`` adds
    ``dialogue``/``field``/``split``/``sample`` when the caller knows them. Errors that already are a
    :class:`DataFormatError` pass through unchanged; the original exception stays chained for debugging.
    """
    try:
        yield
    except DataFormatError:
        raise
    except RecursionError as exc:
        raise DataFormatError("data nested too deeply to read", file=file, **where) from exc
    except MemoryError as exc:
        raise DataFormatError(
            "not enough memory to read this file (is it corrupt, or far larger than expected?)",
            file=file,
            **where,
        ) from exc
    except OSError as exc:
        raise DataFormatError(f"cannot read the file ({exc.strerror or exc})", file=file, **where) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataFormatError(f"unreadable value ({type(exc).__name__}: {exc})", file=file, **where) from exc


def names_file_on_failure(read: Callable[..., T]) -> Callable[..., T]:
    """Decorate a reader whose first argument is the file it reads with :func:`file_errors`."""

    @functools.wraps(read)
    def wrapper(path: str | os.PathLike, *args: Any, **kwargs: Any) -> T:
        with file_errors(path):
            return read(path, *args, **kwargs)

    return wrapper
