"""Verification: the live log against its signed tree heads, or an exported file against its detached proof.

``checker`` matches records against seals; ``file`` and ``scan`` read exported
files; ``offline`` checks a proof with the public keys alone. None of these
needs Flask or a database: ``python -m consent.verify FILE --proof PROOF``
runs with the ``cryptography`` package only. ``live`` and ``command`` check
the stored log from inside the service.
"""
