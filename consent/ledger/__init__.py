"""The tamper-evident ledger: a Merkle tree per site (after RFC 9162), signed tree heads, keys and sealing.

The modules ``tree``, ``canonical``, ``leaves`` and ``signing`` need nothing but
the standard library and ``cryptography``: the offline verifier
(``python -m consent.verify``) uses them without Flask or a database. The
others store the ledger and keep it growing.
"""
