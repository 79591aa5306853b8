"""Running metrics on calls: triggers, the judge call, verdict checks, the result cache key."""
