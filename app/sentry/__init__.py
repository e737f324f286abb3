"""Everything that speaks Sentry's protocols: signatures, and (later) the REST client."""
