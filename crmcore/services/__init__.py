"""Service functions: the only writers of contact data. Each validates, checks access, writes,
audits and fires hooks in one transaction."""
