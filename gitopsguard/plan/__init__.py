"""The plan stage (pure): prepare desired objects, decide what changed, decide what may be pruned."""
