"""What an outbox handler raises instead of returning: the worker turns each into an outcome.

Both carry a reason sentence for the outbox's "last error" column and the log, so it must never name a
supporter, an address or anything else personal: "the receiver answered 500", not the body it sent.
"""


class DeliveryFailed(Exception):
    """The send did not happen this time (receiver down, refused, timed out): try again later, with backoff,
    until the attempts run out and the message is dead. `permanent`: trying again cannot help (a mail
    server refused the recipient for good), so the message is dead at once, for staff to see."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Dropped(Exception):
    """There is nothing to send any more (the signature was confirmed, purged or erased, or the partner's
    webhook was switched off): the message leaves the outbox as if it had been sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
