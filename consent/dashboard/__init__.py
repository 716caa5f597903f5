"""The dashboard at ``/admin``: its pages, its users and its chart."""
