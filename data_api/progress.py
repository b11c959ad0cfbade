"""Which batch each (group, day) is on, kept in a JSON file so a restart resumes where it was.

Writes go to a temporary file renamed over the old one, under an exclusive file lock, so a
crash never leaves a half-written state and two processes never interleave their updates.
"""

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Progress:
    generation: int = 1  # bumped by every restart, so a consumer can tell collections apart
    batch_number: int = 0  # last batch served, counting from 1; 0 = none yet
    served_at: float = 0.0  # when batch_number was first served (epoch seconds)


class ExhaustedError(Exception):
    """Every batch of the slice has been served."""


class ProgressStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_path = path.with_name(path.name + ".lock")

    def next_batch(self, key: str, batch_count: int, min_update_time: float) -> Progress:
        """Advance to the next batch when the current one is old enough, else repeat it."""
        with self._locked() as states:
            progress = states.get(key, Progress())
            now = time.time()
            if progress.batch_number == 0 or now - progress.served_at >= min_update_time:
                if progress.batch_number >= batch_count:
                    raise ExhaustedError(key)
                progress = Progress(progress.generation, progress.batch_number + 1, now)
                states[key] = progress
                self._write(states)
            return progress

    def restart(self, key: str) -> Progress:
        with self._locked() as states:
            progress = Progress(generation=states.get(key, Progress()).generation + 1)
            states[key] = progress
            self._write(states)
            return progress

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Progress]]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self._read()

    def _read(self) -> dict[str, Progress]:
        if not self.path.exists():
            return {}
        return {key: Progress(**value) for key, value in json.loads(self.path.read_text()).items()}

    def _write(self, states: dict[str, Progress]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({key: asdict(value) for key, value in states.items()}, indent=1))
        os.replace(temporary, self.path)
