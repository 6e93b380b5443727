"""Cadence: email cadences sent from your own mailbox, with IMAP reply tracking."""

__version__ = "0.1.0"
