"""The webhook gateway: authenticate, store in the inbox, answer fast. Processing happens elsewhere."""
