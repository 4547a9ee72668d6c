"""Provider strategies: how a decision becomes a change on the wire."""
