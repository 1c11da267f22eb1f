"""Errors of the kernel adapters, each with a one-line message an operator can act on."""

from __future__ import annotations


class DatapathUnavailable(Exception):
    """The machine cannot run the datapath at all (not root, nftables missing): a one-line reason.

    Entry points print ``str(exc)`` and exit; there is nothing to retry.
    """


class KernelError(Exception):
    """One kernel operation failed (the router goes to ERROR with this message, and is retried)."""


class NftError(KernelError):
    """nftables refused a ruleset or a command."""
