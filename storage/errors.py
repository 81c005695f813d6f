"""The one exception storage raises on purpose."""


class StorageError(Exception):
    """The database cannot be opened, migrated or trusted; the message says what to do."""
