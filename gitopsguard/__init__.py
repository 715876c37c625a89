"""gitopsguard: make a Kubernetes cluster match one Git repository, safely.

Data flows one way through the stages (see docs/architecture.md):

    source -> render -> policy -> plan -> apply/prune -> grants -> audit/notify
"""

__version__ = "0.1.0"
