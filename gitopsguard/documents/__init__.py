"""Reading hostile YAML files within bounds, shared by every loader: the renderer (manifests), the policy
loader (policies/) and the grants loader (access/). Neutral ground: it imports no stage, so the stages can
share it without importing each other."""
