"""The compliance export: plain tables of records (CSV, JSON Lines, ISO/IEC TS 27560), and the proof beside them.

``formats`` (the columns and the text of each value) needs no Flask; ``source``
reads a site's records in one snapshot; ``proof`` builds the detached proof;
``views`` holds the route and ``consent export``.
"""
