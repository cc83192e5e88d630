"""Shards over a fixed set of Ray actors: a queue feeds each idle actor the next shard, and
a shard whose actor died goes back to the front of the queue, to be redone by the next
idle actor, while Ray restarts the dead one (the pool probes it until it answers).

Results are handed back by shard index, so the caller reassembles them in order whatever
actor ran what: a redone shard changes nothing but the time it took.
"""
from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any, Callable

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from sharpen.errors import UserError

# A shard that lost its worker this many times is no accident (one that kills its worker
# every time, e.g. out of memory): stop with the reason instead of looping.
MAX_REDOS = 3
RESTART_TIMEOUT = 300.0  # seconds a dead actor may take to come back (model reload included)


class ActorPool:
    """Runs shards `0..n-1` on `actors`; `submit(actor, shard)` starts one and returns its ref.
    The actors need a `pid()` method (the restart probe)."""

    def __init__(self, actors: list[Any], log: Callable[[str], None] = print) -> None:
        self.actors = actors
        self.log = log
        self.redone: list[tuple[str, int, int]] = []  # (what, shard, worker) of every redo
        self._busy: dict[int, Any] = {}  # worker -> the shard ref it is computing

    def busy(self) -> list[Any]:
        """The actors computing a shard right now."""
        return [self.actors[w] for w in self._busy]

    def run(self, n: int, submit: Callable[[Any, int], Any], done: Callable[[int, Any], None], what: str) -> None:
        """Every shard once; `done(shard, result)` is called in the driver as each returns."""
        queue: deque[int] = deque(range(n))
        pending: dict[Any, tuple[str, int, int]] = {}  # ref -> ("shard" | "probe", shard, worker)
        free = list(range(len(self.actors)))
        failures: Counter[int] = Counter()
        dead_since: dict[int, float] = {}

        def feed() -> None:
            while queue and free:
                w, s = free.pop(0), queue.popleft()
                ref = submit(self.actors[w], s)
                pending[ref] = ("shard", s, w)
                self._busy[w] = ref

        def probe(w: int) -> None:
            if time.time() - dead_since[w] > RESTART_TIMEOUT:
                raise RuntimeError(f"ray: worker {w} did not come back within {RESTART_TIMEOUT:.0f} s of dying")
            pending[self.actors[w].pid.remote()] = ("probe", -1, w)

        try:
            feed()
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                kind, s, w = pending.pop(ref)
                self._busy.pop(w, None)
                try:
                    out = ray.get(ref)
                except (RayActorError, ActorUnavailableError) as err:
                    if kind == "probe":  # still restarting
                        time.sleep(0.2)
                        probe(w)
                        continue
                    failures[s] += 1
                    if failures[s] > MAX_REDOS:
                        raise RuntimeError(f"ray: {what} shard {s} lost its worker {failures[s]} times; last: {err}") from None
                    self.redone.append((what, s, w))
                    self.log(f"ray: worker {w} died during {what} shard {s} ({type(err).__name__}); shard {s} redone")
                    queue.appendleft(s)
                    dead_since.setdefault(w, time.time())
                    probe(w)
                    feed()
                    continue
                except RayTaskError as err:  # the shard itself raised: the same error as a local run
                    cause = getattr(err, "cause", None)
                    if isinstance(cause, UserError):
                        raise UserError(str(cause), field=cause.field, detail=cause.detail) from None
                    raise
                dead_since.pop(w, None)
                free.append(w)
                feed()  # the next shard starts before this one's results are consumed
                if kind == "shard":
                    done(s, out)
        finally:
            self._busy.clear()
