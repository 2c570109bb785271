"""Named errors. Each message says what is wrong and, where it helps, the fix.

The CLI turns any :class:`AgentMemError` into a one-line message and exit code 1.
"""


class AgentMemError(Exception):
    """Base class of every error agentmem raises on purpose."""


class BadInputError(AgentMemError, ValueError):
    """Input that cannot be stored as given (the message names the field)."""


class BadTimeError(BadInputError):
    """A time that is neither seconds nor an ISO-8601 date."""


class UnknownEntityError(BadInputError):
    """An entity id, name or alias that the memory does not hold."""


class MediaNotFoundError(BadInputError):
    """A media path that does not exist."""


class FormatError(BadInputError):
    """A file that is not in the format it was read as."""


class ModelUnavailableError(AgentMemError):
    """Embedding model weights that cannot be loaded (for example offline)."""


class StoreError(AgentMemError):
    """A memory directory that cannot be opened or is of another schema version."""


class NotFoundError(AgentMemError, KeyError):
    """A record id that is not in the memory."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class IndexWarning(UserWarning):
    """A write was stored, but the vector index has not taken it yet (it waits in the outbox)."""
