"""The engine's search of a list for one child listed twice (`same_child_pairs`), run in another
Python process while the caller goes on: an import's check of a register of a hundred thousand rows
takes seconds of pure Python, and the match against the stored children, which comes next, does not
need its answer. On a machine of two cores the two take that time side by side.

The other process is a plain `python -m cases.matching.elsewhere`, not a fork: it shares nothing
with the caller (no database connection, no lock, no thread) but the records it is given on its
standard input and the pairs it writes to its standard output, with the matching parameters in
force. It needs no Django: the engine is pure Python. If it cannot be started, or fails, or is
killed, the caller's own process does the search instead: the answer is the same, only later.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cases.matching.engine import PersonRecord, same_child_pairs
from cases.matching.parameters import ModelParameters, model_parameters, use_parameters

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
# What a record is made of, as it travels: its cached parts are worked out again on the other side.
_FIELDS = ("family_name", "given_name", "patronymic", "birth_date", "sex", "settlement")
# Longer than any list the import takes could need; a process that has not answered by then is stopped.
TIMEOUT_SECONDS = 600


def _travelling(record: PersonRecord) -> tuple[str, ...]:
    return tuple(str(getattr(record, name) or "") for name in _FIELDS)


class SameChildPairs:
    """`same_child_pairs` of some records, being worked out in another process (`start`); `result`
    waits for the answer. Not started, it works them out here when asked."""

    def __init__(self, records: Sequence[PersonRecord]) -> None:
        self._records = records
        self._process: subprocess.Popen[bytes] | None = None
        self._result: list[tuple[int, int]] | None = None

    @classmethod
    def start(cls, records: Sequence[PersonRecord]) -> SameChildPairs:
        pending = cls(records)
        payload = pickle.dumps((model_parameters(), [_travelling(record) for record in records]),
                               protocol=pickle.HIGHEST_PROTOCOL)
        try:
            # Given as a file, not through a pipe: nothing waits for the other process to read it.
            with tempfile.TemporaryFile() as given:
                given.write(payload)
                given.seek(0)
                pending._process = subprocess.Popen(
                    [sys.executable, "-m", "cases.matching.elsewhere"], cwd=ROOT, stdin=given,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError:
            logger.warning("the search for a child listed twice could not start elsewhere; it runs here",
                           exc_info=True)
            pending.stop()
        return pending

    def result(self) -> list[tuple[int, int]]:
        if self._result is not None:
            return self._result
        if self._process is not None:
            try:
                out, err = self._process.communicate(timeout=TIMEOUT_SECONDS)
                if self._process.returncode == 0:
                    self._result = pickle.loads(out)  # noqa: S301 written by our own child process, just now
                    return self._result
                logger.warning("the search for a child listed twice failed elsewhere (exit %s): %s; it runs here",
                               self._process.returncode, err.decode(errors="replace")[-2000:])
            except (subprocess.TimeoutExpired, pickle.UnpicklingError, EOFError):
                logger.warning("the search for a child listed twice gave no answer elsewhere; it runs here",
                               exc_info=True)
            self.stop()
        self._result = same_child_pairs(self._records)
        return self._result

    def stop(self) -> None:
        """Stop the other process, if it still runs (its answer is then worked out here, if asked for)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.communicate()
        self._process = None


def _answer() -> None:
    parameters: ModelParameters
    parameters, travelling = pickle.load(sys.stdin.buffer)  # noqa: S301 written by the parent process
    records = [PersonRecord(*fields) for fields in travelling]
    with use_parameters(parameters):
        pairs = same_child_pairs(records)
    sys.stdout.buffer.write(pickle.dumps(pairs, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _answer()
