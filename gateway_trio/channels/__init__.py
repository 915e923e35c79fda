"""Message types the actors exchange, and the channel plumbing they share."""
