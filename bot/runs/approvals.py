"""Team approval of spending stages.

A request binds to one quote (its hash and amount). The rules, from DISTILL_* settings:
- approvers are the listed user IDs and the members of the listed user groups (with none listed, anyone
  in the channel may approve, which suits a first try-out);
- the requester cannot approve their own spend unless self-approval is allowed;
- DISTILL_MIN_APPROVALS distinct approvers grant it; one approver's rejection is final for that quote;
- a quote at or under the auto-approval amount is granted at once and recorded as auto-approved;
- a request expires after DISTILL_APPROVAL_HOURS (the scheduler's next tick, or the first click after, marks
  it); any spec or dataset change voids it;
- clicking twice changes nothing.
Every decision, refusal included, lands in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import ApprovalError
from storage import Storage
from storage.approvals import Approval


class Directory(Protocol):
    """Who belongs to a user group (Slack's usergroups.users.list, behind handlers/); ApprovalError for a group
    that does not exist."""

    async def members_of(self, group_id: str) -> set[str]: ...


@dataclass(frozen=True)
class DecisionResult:
    approval: Approval
    outcome: str  # recorded | approved | rejected | unchanged | refused
    message: str

    @property
    def changed(self) -> bool:
        return self.outcome in {"recorded", "approved", "rejected"}


class ApprovalPolicy:
    def __init__(self, storage: Storage, settings: Settings, directory: Directory,
                 clock: Clock | None = None) -> None:
        self.storage = storage
        self.settings = settings
        self.directory = directory
        self.clock = clock or Clock()

    async def request(self, *, run_id: int, stage: str, quote_hash: str, amount_micro_usd: int,
                      quote: dict[str, Any], requester: str) -> Approval:
        """Open a request for this quote (replacing any open one of the stage), or grant it at once when the
        amount is within the auto-approval threshold."""
        for stale in await self.storage.approvals.for_run(run_id, statuses=("pending",)):
            if stale.stage == stage:
                await self.storage.approvals.set_status(stale.id, "voided")
        auto = amount_micro_usd <= self.settings.auto_approve_micro_usd
        approval = await self.storage.approvals.create(
            run_id=run_id, stage=stage, quote_hash=quote_hash, amount_micro_usd=amount_micro_usd, quote=quote,
            requester=requester, status="approved" if auto else "pending", auto_approved=auto,
            expires_at=(self.clock.now() + timedelta(hours=self.settings.approval_hours)).isoformat(),
        )
        await self.storage.audit.add(
            run_id=run_id, actor=requester, action="auto-approved" if auto else "approval-requested",
            detail={"stage": stage, "approval": approval.id, "amount_micro_usd": amount_micro_usd,
                    "quote_hash": quote_hash},
        )
        return approval

    async def is_approver(self, user_id: str) -> bool:
        listed = self.settings.approvers
        if not listed:
            return True
        if user_id in listed:
            return True
        broken: ApprovalError | None = None
        for group in (g for g in listed if g.startswith("S")):
            try:
                if user_id in await self.directory.members_of(group):
                    return True
            except ApprovalError as exc:  # a group that does not exist: the others may still hold the user
                broken = exc
        if broken is not None:
            raise broken
        return False

    async def decide(self, approval_id: int, user_id: str, decision: str) -> DecisionResult:
        if decision not in {"approve", "reject"}:
            raise ValueError(f"unknown decision {decision!r}")
        approval = await self.storage.approvals.get(approval_id)
        if approval is None:
            raise LookupError(f"approval {approval_id} does not exist")
        refusal = await self._refusal(approval, user_id, decision)
        if refusal:
            await self._audit(approval, user_id, "approval-refused", {"decision": decision, "reason": refusal})
            return DecisionResult(await self.storage.approvals.require(approval.id), "refused", refusal)
        if approval.status != "pending":
            return DecisionResult(approval, "unchanged", self._already(approval, user_id))
        if not await self.storage.approvals.record_decision(approval.id, user_id, decision):
            return DecisionResult(approval, "unchanged", "You already decided on this request.")
        await self._audit(approval, user_id, decision, {})
        if decision == "reject":
            await self.storage.approvals.set_status(approval.id, "rejected")
            return DecisionResult(await self.storage.approvals.require(approval.id), "rejected",
                                  "Rejected. The stage will not run for this quote.")
        approval = await self.storage.approvals.require(approval.id)
        have, need = len(self._counted(approval)), self.settings.min_approvals
        if have >= need and await self.storage.approvals.set_status(approval.id, "approved"):
            await self._audit(approval, user_id, "approved", {"approvers": sorted(self._counted(approval))})
            return DecisionResult(await self.storage.approvals.require(approval.id), "approved",
                                  "Approved. The stage is starting.")
        return DecisionResult(approval, "recorded", f"Approval recorded: {have} of {need} needed.")

    async def expire_due(self) -> list[Approval]:
        """Mark every pending request past its expiry as expired; returns them as they are now."""
        expired = []
        for approval in await self.storage.approvals.pending_expired_by(self.clock.now().isoformat()):
            if await self._expire(approval):
                expired.append(await self.storage.approvals.require(approval.id))
        return expired

    def expired_message(self) -> str:
        return (f"This request expired after {self.settings.approval_hours} h without enough approvals. "
                "Ask again to get a fresh quote.")

    async def _expire(self, approval: Approval) -> bool:
        """False when a decision or a void got there first."""
        if not await self.storage.approvals.set_status(approval.id, "expired"):
            return False
        await self._audit(approval, "system", "approval-expired", {})
        return True

    def _counted(self, approval: Approval) -> set[str]:
        approvers = approval.approvers()
        if not self.settings.allow_self_approval:
            approvers.discard(approval.requester)
        return approvers

    async def _refusal(self, approval: Approval, user_id: str, decision: str) -> str | None:
        """Why this user may not make this decision now, or None."""
        if approval.status == "voided":
            return "This request was voided because the run's spec, data or quote changed. Ask again."
        if approval.status == "expired":
            return "This request has expired. Ask again to get a fresh quote."
        if approval.status == "pending" and self.clock.now() >= datetime.fromisoformat(approval.expires_at):
            await self._expire(approval)
            return self.expired_message()
        if approval.status != "pending":
            return None
        if not await self.is_approver(user_id):
            return "Only approvers can decide on spend (see DISTILL_APPROVERS). Ask one of them to review it."
        if decision == "approve" and user_id == approval.requester and not self.settings.allow_self_approval:
            return "You asked for this spend, so someone else has to approve it."
        return None

    @staticmethod
    def _already(approval: Approval, user_id: str) -> str:
        mine = next((d.decision for d in approval.decisions if d.user_id == user_id), None)
        if mine:
            return f"You already chose {mine}; the request is {approval.status}."
        return f"This request is already {approval.status}."

    async def _audit(self, approval: Approval, actor: str, action: str, detail: dict[str, Any]) -> None:
        await self.storage.audit.add(run_id=approval.run_id, actor=actor, action=action,
                                     detail={"stage": approval.stage, "approval": approval.id, **detail})
