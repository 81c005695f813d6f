"""A run's states and the moves between them, in one table; storage changes a state only along it.

Idle states wait for a person (new data, settings, an approval request); busy states are a stage at work and end
only by that stage finishing, failing or being cancelled; a spending stage starts from an idle state (a quote under
the auto-approve threshold) or from awaiting_approval.
"""

from __future__ import annotations

import enum


class RunState(enum.StrEnum):
    CREATED = "created"
    READY = "ready"
    AWAITING_APPROVAL = "awaiting_approval"
    PILOTING = "piloting"
    COLLECTING = "collecting"
    COLLECTED = "collected"
    TRAINING = "training"
    EVALUATING = "evaluating"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DELETED = "deleted"  # its data erased (/distill delete, DISTILL_RETENTION_DAYS); its record and audit trail kept

    @property
    def busy(self) -> bool:
        return self in BUSY

    @property
    def unfinished(self) -> bool:
        return self not in (RunState.DONE, RunState.FAILED, RunState.CANCELLED, RunState.DELETED)


BUSY = frozenset({RunState.PILOTING, RunState.COLLECTING, RunState.TRAINING, RunState.EVALUATING})
IDLE = frozenset(RunState) - BUSY - {RunState.AWAITING_APPROVAL, RunState.DELETED}

STAGES = frozenset({RunState.PILOTING, RunState.COLLECTING, RunState.TRAINING})  # what an approval starts

# Where each state may go. An idle run may take new data or settings (any idle state: "ready" when answers must be
# collected again, else where it was), ask for approval, or start a stage that was auto-approved; a request returns
# to where it was when refused or expired, or starts its stage when approved. A run whose data is deleted stays so.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    **{state: IDLE | STAGES | {RunState.AWAITING_APPROVAL, RunState.DELETED} for state in IDLE},
    RunState.AWAITING_APPROVAL: IDLE | STAGES | {RunState.AWAITING_APPROVAL},
    RunState.PILOTING: frozenset({RunState.READY, RunState.COLLECTED, RunState.FAILED, RunState.CANCELLED}),
    RunState.COLLECTING: frozenset({RunState.READY, RunState.COLLECTED, RunState.FAILED, RunState.CANCELLED}),
    RunState.TRAINING: frozenset({RunState.EVALUATING, RunState.FAILED, RunState.CANCELLED}),
    RunState.EVALUATING: frozenset({RunState.DONE, RunState.FAILED, RunState.CANCELLED}),
    RunState.DELETED: frozenset(),
}

