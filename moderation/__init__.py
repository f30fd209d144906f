"""Core app: uploads, scans, tags and reviews, with the services that change them."""
