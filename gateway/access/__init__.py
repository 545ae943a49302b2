"""Who may see what: principals, roles, permissions, and the one seam where they are applied.

The domain knows nothing of users; this package sits between the HTTP edge and the stores. A route
declares the permission it needs (``require``); the data a principal may see is answered by the store
view for that principal (``gateway.access.views``), so a route cannot forget a check.
"""
