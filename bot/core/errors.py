"""The exceptions the product raises on purpose.

Every one carries a message written for the person who caused it: what is wrong and what to do next.
The Slack handlers and the CLI show that message as it is; anything else is a bug and gets an error id.
"""

from storage.errors import StorageError


class DistillError(Exception):
    """Base class: an expected failure with a message a user can act on."""


class ConfigError(DistillError):
    """An environment variable is missing or has a value the bot cannot use."""


class TokenizerError(DistillError):
    """A tokenizer vocabulary is missing or does not match its published checksum."""


class DatasetError(DistillError):
    """The uploaded CSV cannot be used: encoding, shape, size or content."""


class SpecError(DistillError):
    """The run spec does not fit the dataset: unknown column or placeholder, too few rows per label."""


class PriceError(DistillError):
    """A model has no entry in the price table."""


class BudgetExceeded(DistillError):
    """The next request would take actual spend past the approved cap."""


class ProviderError(DistillError):
    """A model provider refused or failed a request after the allowed retries."""


class ApprovalError(DistillError):
    """A decision on a spending request is not allowed (self-approval, not an approver, expired, voided)."""


class StateError(DistillError):
    """The run is not in a state that allows this step (for example training before collection)."""


# Expected failures whose message is shown to the user as it is. StorageError is defined in storage/
# (which sits below bot/), so it is not a DistillError.
USER_ERRORS: tuple[type[Exception], ...] = (DistillError, StorageError)
