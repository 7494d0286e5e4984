"""What the agency and a client agreed, read and checked: contracts, policies, calendars.

``contract`` is ``client.yml`` (pydantic); ``policy`` what a level and a
sector imply; ``calendar`` windows and freezes; ``clients`` loads a client's
folder; ``repository_location`` and ``offsite_target`` are where backups and
offsite copies go; ``accounts`` and ``durations`` are the checks and parsing
they share; ``reference`` renders the contract's
reference. Nothing here runs a tool or records.
"""
