"""The REST tag lookup platforms read (`/api/v1/uploads/…`): on top of every stage, imported by none."""
