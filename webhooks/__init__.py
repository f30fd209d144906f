"""HTTP in and out: verified inbound upload webhooks, safe image fetching and (later) signed callbacks."""
