"""Revisions, one file each, named <revision>_<slug>.py with short ids: 0001, 0002, ..."""
