"""Everything that speaks Sentry's protocols: signatures, the REST client, issue summaries."""
