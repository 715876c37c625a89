"""Evidence of review, shared by revisions (source/review) and grants: git history read with literal paths,
signatures checked against the operator's trust file, and the forge's API read page by page."""
