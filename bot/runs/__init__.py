"""The run service and what surrounds it: approvals, cards, notifications, the scheduler, the worker."""
