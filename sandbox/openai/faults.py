"""Failures on purpose: seeded random 500/503 and slow answers, and scripted ones queued with `inject`.

Random faults draw from one `random.Random(seed)` in request order, so a test that sends the same requests in
the same order sees the same faults. An injection answers the next `count` requests whose path starts with
`path_prefix` (or, for a prefix ending in "$", is exactly the path before it) instead of the real handler: 429
(with retry-after), 500, 503, "malformed" (HTTP 200 whose body is cut-off JSON) or "timeout" (the connection is
held until the client gives up or the sandbox stops).
"lost" is the one that does run the handler: the request takes effect, then its answer is replaced by a 502,
as when a gateway drops the reply of a call that went through. "echo_key" answers `status` (401 unless given) with a
message that quotes the API key the request carried, whole, as some OpenAI-compatible gateways do (OpenAI itself
shows a few characters of it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

OUTCOMES = (429, 500, 503, "malformed", "timeout", "lost", "echo_key")


@dataclass
class Injection:
    path_prefix: str
    outcome: int | str
    remaining: int
    retry_after: float
    method: str | None = None  # None: any method
    status: int = 401  # of "echo_key"


class Faults:
    def __init__(
        self,
        seed: int = 0,
        fault_rate: float = 0.0,
        fault_statuses: Sequence[int] = (500, 503),
        slow_rate: float = 0.0,
        slow_seconds: float = 0.0,
    ) -> None:
        for name, rate in (("fault_rate", fault_rate), ("slow_rate", slow_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} is a probability between 0 and 1, got {rate}")
        self._random = random.Random(seed)
        self.fault_rate = fault_rate
        self.fault_statuses = tuple(fault_statuses)
        self.slow_rate = slow_rate
        self.slow_seconds = slow_seconds
        self._injections: list[Injection] = []

    def inject(self, path_prefix: str, outcome: int | str, count: int = 1, retry_after: float = 1,
               method: str | None = None, status: int = 401) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self._injections.append(Injection(path_prefix, outcome, count, retry_after, method, status))

    def take_injection(self, path: str, method: str) -> Injection | None:
        for injection in self._injections:
            prefix = injection.path_prefix
            matches = path == prefix[:-1] if prefix.endswith("$") else path.startswith(prefix)
            if matches and injection.method in (None, method):
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return injection
        return None

    def random_status(self) -> int | None:
        if self.fault_rate and self._random.random() < self.fault_rate:
            return self._random.choice(self.fault_statuses)
        return None

    def random_delay(self) -> float:
        if self.slow_rate and self._random.random() < self.slow_rate:
            return self.slow_seconds
        return 0.0

    def clear(self) -> None:
        self._injections.clear()
