"""The sections of ``make bench``: each measures one thing and draws its own tables."""
